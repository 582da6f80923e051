"""The `restricted` Pod Security Standard, written out as a check of one pod (JSON as sent to the API).

An independent reading of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the
profile as of Kubernetes 1.25-1.37), not of the manifests under test: every `baseline` control, then the
`restricted` ones. Each rule returns a sentence naming the field, so a failing test says what to fix.
`violations(pod)` takes a Pod's `{"metadata": ..., "spec": ...}` (a Job's or a Deployment's template).
"""

from __future__ import annotations

# Capabilities `baseline` lets a container add; `restricted` allows only NET_BIND_SERVICE.
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_ADDABLE = {"NET_BIND_SERVICE"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}


def _containers(spec: dict) -> list[tuple[str, dict]]:
    return [(f"{kind} {c.get('name', '?')}", c)
            for kind in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(kind) or []]


def _baseline(metadata: dict, spec: dict) -> list[str]:
    found = []
    pod_ctx = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field} must be unset or false")
    if (pod_ctx.get("windowsOptions") or {}).get("hostProcess"):
        found.append("spec.securityContext.windowsOptions.hostProcess must be unset or false")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"volume {volume.get('name')}: hostPath volumes are forbidden")
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                value == "runtime/default" or value.startswith("localhost/")):
            found.append(f"annotation {key}: AppArmor profile must be runtime/default or localhost/*")
    for sysctl in pod_ctx.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl")
    contexts = [("spec.securityContext", pod_ctx)] + [(f"{where}.securityContext", c.get("securityContext") or {})
                                                      for where, c in _containers(spec)]
    for where, ctx in contexts:
        selinux = ctx.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"{where}.seLinuxOptions: only the container SELinux types, no user or role")
        if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where}.seccompProfile must not be Unconfined")
        if (ctx.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"{where}.appArmorProfile must be RuntimeDefault or Localhost")
    for where, container in _containers(spec):
        ctx = container.get("securityContext") or {}
        if ctx.get("privileged"):
            found.append(f"{where}: privileged must be unset or false")
        if (ctx.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where}: windowsOptions.hostProcess must be unset or false")
        added = set((ctx.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            found.append(f"{where}: capabilities {sorted(added - BASELINE_CAPABILITIES)} may not be added")
        if ctx.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount must be Default")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where}: hostPort must be unset or 0")
    return found


def _restricted(spec: dict) -> list[str]:
    found = []
    pod_ctx = spec.get("securityContext") or {}
    for volume in spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if not types <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume.get('name')}: type {sorted(types)} is not allowed")
    if pod_ctx.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser must not be 0")
    pod_non_root = pod_ctx.get("runAsNonRoot") is True
    pod_seccomp = (pod_ctx.get("seccompProfile") or {}).get("type") in SECCOMP_ALLOWED
    for where, container in _containers(spec):
        ctx = container.get("securityContext") or {}
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        non_root = ctx.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            found.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if ctx.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser must not be 0")
        seccomp = (ctx.get("seccompProfile") or {}).get("type")
        if (seccomp is None and not pod_seccomp) or (seccomp is not None and seccomp not in SECCOMP_ALLOWED):
            found.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost (pod or container)")
        capabilities = ctx.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: capabilities must drop ALL")
        if set(capabilities.get("add") or []) - RESTRICTED_ADDABLE:
            found.append(f"{where}: only NET_BIND_SERVICE may be added")
    return found


def violations(pod: dict) -> list[str]:
    """Every `restricted` rule the pod breaks (empty: admitted where the profile is enforced)."""
    metadata, spec = pod.get("metadata") or {}, pod["spec"]
    return _baseline(metadata, spec) + _restricted(spec)


def writable_paths(pod: dict) -> dict[str, set[str]]:
    """Per container, the paths it can write despite readOnlyRootFilesystem: its emptyDir mounts."""
    empty_dirs = {v["name"] for v in pod["spec"].get("volumes") or [] if "emptyDir" in v}
    return {where: {m["mountPath"] for m in c.get("volumeMounts") or []
                    if m["name"] in empty_dirs and not m.get("readOnly")}
            for where, c in _containers(pod["spec"])}
