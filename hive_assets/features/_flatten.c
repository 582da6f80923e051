/* Optional C flattener behind `hive_assets.features._batch._extract_safe` (private).
 *
 * `extract(chunk, ids, caps, weak_map, domain_fn, domain_cache, priority_fn, priority_cache)` does
 * what `_feature_kernels._extract(chunk, ids, caps)` does for the common case, returning bytearrays
 * (wrapped into numpy arrays by the caller) instead of arrays:
 *
 *   (n_tasks i64[P], task_codes i64[T], durations f64[T], n_deps i64[T], dep_codes i64[D],
 *    weak u8[D], n_caps i64[T], cap_codes i64[C], scalars f64[3*P], priority f64[P], domains list)
 *
 * The common case: every plan is a dict; `tasks` a list / tuple / None / missing of dicts;
 * task_id a str / None / missing; dependencies a list / tuple / None / missing of str or of dicts
 * whose task_id and type are str / None / missing; required_capabilities a list / tuple / None /
 * missing of str / None; durations and the three plan scalars int / float / None / missing (exact
 * types only). Anything else raises `Unsupported` BEFORE any vocabulary is touched, and the caller
 * runs the Python path on the chunk, so semantics never depend on this module.
 *
 * Vocabulary codes are assigned in the same order as the Python path (string dependencies, then
 * dict-dependency ids, then task ids; capabilities in order), with code = len(vocab) on a miss,
 * so both paths produce identical codes from the same vocabulary objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static PyObject *Unsupported;
static PyObject *s_tasks, *s_task_id, *s_duration, *s_dependencies, *s_capabilities, *s_type;
static PyObject *s_risk, *s_complexity, *s_total, *s_domain, *s_priority;

/* dict value for a str key; NULL (without error) when missing; sets *err on error */
static inline PyObject *dget(PyObject *d, PyObject *key, int *err)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL && PyErr_Occurred())
        *err = 1;
    return v;
}

/* fn(plan[key]) through a cache keyed by exact str values (a miss calls fn, which also fills the
   cache on the Python side). New reference, or NULL with an exception set. */
static PyObject *cached_call(PyObject *plan, PyObject *key, PyObject *cache, PyObject *fn)
{
    int err = 0;
    PyObject *v = dget(plan, key, &err);
    if (err)
        return NULL;
    v = v ? v : Py_None;
    Py_INCREF(v);
    PyObject *out = NULL;
    if (PyUnicode_CheckExact(v)) {
        out = PyDict_GetItemWithError(cache, v);
        if (out)
            Py_INCREF(out);
        else if (PyErr_Occurred()) {
            Py_DECREF(v);
            return NULL;
        }
    }
    if (!out)
        out = PyObject_CallOneArg(fn, v);
    Py_DECREF(v);
    return out;
}

static int unsupported(void)
{
    PyErr_SetNone(Unsupported);
    return -1;
}

/* None / missing -> NaN; exact float / int -> value; else Unsupported */
static int as_double(PyObject *v, double *out)
{
    if (v == NULL || v == Py_None) {
        *out = Py_NAN;
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        double d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return unsupported();
        }
        *out = d;
        return 0;
    }
    return unsupported();
}

/* list / tuple -> its size and items; None / missing -> 0; else Unsupported */
static int as_seq(PyObject *v, Py_ssize_t *n, PyObject ***items)
{
    if (v == NULL || v == Py_None) {
        *n = 0;
        *items = NULL;
        return 0;
    }
    if (PyList_CheckExact(v)) {
        *n = PyList_GET_SIZE(v);
        *items = ((PyListObject *)v)->ob_item;
        return 0;
    }
    if (PyTuple_CheckExact(v)) {
        *n = PyTuple_GET_SIZE(v);
        *items = ((PyTupleObject *)v)->ob_item;
        return 0;
    }
    return unsupported();
}

static inline int str_or_none(PyObject *v)
{
    return v == NULL || v == Py_None || PyUnicode_CheckExact(v);
}

/* vocab[key], assigning len(vocab) on a miss (what _Vocab.__missing__ does) */
static inline int code_of(PyObject *vocab, PyObject *key, int64_t *out)
{
    PyObject *v = PyDict_GetItemWithError(vocab, key);
    if (v != NULL) {
        long long c = PyLong_AsLongLong(v);
        if (c == -1 && PyErr_Occurred())
            return -1;
        *out = (int64_t)c;
        return 0;
    }
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t n = PyDict_GET_SIZE(vocab);
    PyObject *c = PyLong_FromSsize_t(n);
    if (c == NULL)
        return -1;
    int rc = PyDict_SetItem(vocab, key, c);
    Py_DECREF(c);
    if (rc < 0)
        return -1;
    *out = (int64_t)n;
    return 0;
}

/* _WEAK[kind] (a dict subclass whose __missing__ calls _is_weak) */
static int weak_of(PyObject *weak_map, PyObject *kind)
{
    if (kind == Py_None)
        return 0;  /* _is_weak(None) is False */
    PyObject *v = PyDict_GetItemWithError(weak_map, kind);
    if (v != NULL)
        return PyObject_IsTrue(v);
    if (PyErr_Occurred())
        return -1;
    v = PyObject_GetItem(weak_map, kind);
    if (v == NULL)
        return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

typedef struct {
    PyObject **items;
    Py_ssize_t len, cap;
} vec_t;

static int vec_reserve(vec_t *v, Py_ssize_t extra)
{
    if (v->len + extra <= v->cap)
        return 0;
    Py_ssize_t cap = v->cap ? v->cap : 1024;
    while (cap < v->len + extra)
        cap *= 2;
    PyObject **items = PyMem_Realloc(v->items, cap * sizeof(PyObject *));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->items = items;
    v->cap = cap;
    return 0;
}

static PyObject *new_bytes(Py_ssize_t size)
{
    return PyByteArray_FromStringAndSize(NULL, size);
}

#define I64(b) ((int64_t *)PyByteArray_AS_STRING(b))
#define F64(b) ((double *)PyByteArray_AS_STRING(b))

static PyObject *extract(PyObject *self, PyObject *args)
{
    PyObject *chunk, *ids, *caps, *weak_map, *domain_fn, *domain_cache, *priority_fn, *priority_cache;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OO!OO!", &PyList_Type, &chunk, &PyDict_Type, &ids, &PyDict_Type, &caps,
                          &PyDict_Type, &weak_map, &domain_fn, &PyDict_Type, &domain_cache, &priority_fn,
                          &PyDict_Type, &priority_cache))
        return NULL;

    PyObject *result = NULL;
    PyObject *b_ntasks = NULL, *b_tcodes = NULL, *b_dur = NULL, *b_ndeps = NULL, *b_dcodes = NULL, *b_weak = NULL;
    PyObject *b_ncaps = NULL, *b_ccodes = NULL, *b_scalars = NULL, *b_priority = NULL, *domains = NULL;
    PyObject **task_ids = NULL;
    /* borrowed references collected by pass 1, in flat order (the chunk keeps them alive; pass 2
       runs no Python code except _WEAK.__missing__ -> _is_weak on a str) */
    vec_t deps_v = {NULL, 0, 0};   /* per dependency: the str, or NULL for a dict entry */
    vec_t side_ids = {NULL, 0, 0}; /* per dict dependency: its task_id (None when missing) */
    vec_t side_kinds = {NULL, 0, 0};
    vec_t caps_v = {NULL, 0, 0};
    int err = 0;
    Py_ssize_t P = PyList_GET_SIZE(chunk);
    Py_ssize_t T = 0;

    /* ---- pass 1: validate every value, count, read numbers (no vocabulary touched) ---- */
    b_ntasks = new_bytes(P * 8);
    b_scalars = new_bytes(3 * P * 8);
    b_priority = new_bytes(P * 8);
    if (!b_ntasks || !b_scalars || !b_priority)
        goto done;
    int64_t *ntasks = I64(b_ntasks);
    double *scalars = F64(b_scalars);
    for (Py_ssize_t i = 0; i < P; i++) {
        PyObject *plan = PyList_GET_ITEM(chunk, i);
        if (!PyDict_CheckExact(plan)) {
            unsupported();
            goto done;
        }
        Py_ssize_t n;
        PyObject **items;
        PyObject *tasks = dget(plan, s_tasks, &err);
        if (err || as_seq(tasks, &n, &items) < 0)
            goto done;
        ntasks[i] = n;
        T += n;
        PyObject *r = dget(plan, s_risk, &err);
        if (err || as_double(r, &scalars[i]) < 0)
            goto done;
        r = dget(plan, s_complexity, &err);
        if (err || as_double(r, &scalars[P + i]) < 0)
            goto done;
        r = dget(plan, s_total, &err);
        if (err || as_double(r, &scalars[2 * P + i]) < 0)
            goto done;
    }

    task_ids = PyMem_Malloc((T ? T : 1) * sizeof(PyObject *));
    if (!task_ids) {
        PyErr_NoMemory();
        goto done;
    }
    b_dur = new_bytes(T * 8);
    b_ndeps = new_bytes(T * 8);
    b_ncaps = new_bytes(T * 8);
    b_tcodes = new_bytes(T * 8);
    if (!b_dur || !b_ndeps || !b_ncaps || !b_tcodes)
        goto done;
    double *dur = F64(b_dur);
    int64_t *ndeps = I64(b_ndeps), *ncaps = I64(b_ncaps);
    Py_ssize_t t = 0;
    for (Py_ssize_t i = 0; i < P; i++) {
        PyObject *plan = PyList_GET_ITEM(chunk, i);
        Py_ssize_t n;
        PyObject **items;
        PyObject *tasks = dget(plan, s_tasks, &err);
        if (err || as_seq(tasks, &n, &items) < 0)
            goto done;
        if (n != ntasks[i]) {
            unsupported();
            goto done;
        }
        for (Py_ssize_t j = 0; j < n; j++, t++) {
            PyObject *task = items[j];
            if (!PyDict_CheckExact(task)) {
                unsupported();
                goto done;
            }
            PyObject *tid = dget(task, s_task_id, &err);
            if (err)
                goto done;
            if (!str_or_none(tid)) {
                unsupported();
                goto done;
            }
            task_ids[t] = tid ? tid : Py_None;
            PyObject *d = dget(task, s_duration, &err);
            if (err || as_double(d, &dur[t]) < 0)
                goto done;

            Py_ssize_t m;
            PyObject **deps;
            PyObject *dl = dget(task, s_dependencies, &err);
            if (err || as_seq(dl, &m, &deps) < 0)
                goto done;
            ndeps[t] = m;
            if (m && vec_reserve(&deps_v, m) < 0)
                goto done;
            for (Py_ssize_t k = 0; k < m; k++) {
                PyObject *dep = deps[k];
                if (PyUnicode_CheckExact(dep)) {
                    deps_v.items[deps_v.len++] = dep;
                    continue;
                }
                if (!PyDict_CheckExact(dep)) {
                    unsupported();
                    goto done;
                }
                PyObject *did = dget(dep, s_task_id, &err);
                if (err)
                    goto done;
                PyObject *kind = dget(dep, s_type, &err);
                if (err)
                    goto done;
                if (!str_or_none(did) || !str_or_none(kind)) {
                    unsupported();
                    goto done;
                }
                deps_v.items[deps_v.len++] = NULL;
                if (vec_reserve(&side_ids, 1) < 0 || vec_reserve(&side_kinds, 1) < 0)
                    goto done;
                side_ids.items[side_ids.len++] = did ? did : Py_None;
                side_kinds.items[side_kinds.len++] = kind ? kind : Py_None;
            }

            PyObject *cl = dget(task, s_capabilities, &err);
            PyObject **cs;
            if (err || as_seq(cl, &m, &cs) < 0)
                goto done;
            ncaps[t] = m;
            if (m && vec_reserve(&caps_v, m) < 0)
                goto done;
            for (Py_ssize_t k = 0; k < m; k++) {
                if (!str_or_none(cs[k])) {
                    unsupported();
                    goto done;
                }
                caps_v.items[caps_v.len++] = cs[k];
            }
        }
    }

    /* ---- pass 2: codes, in the Python path's order ---- */
    Py_ssize_t D = deps_v.len, C = caps_v.len;
    b_dcodes = new_bytes(D * 8);
    b_weak = new_bytes(D);
    b_ccodes = new_bytes(C * 8);
    if (!b_dcodes || !b_weak || !b_ccodes)
        goto done;
    int64_t *dcodes = I64(b_dcodes), *ccodes = I64(b_ccodes), *tcodes = I64(b_tcodes);
    char *weak = PyByteArray_AS_STRING(b_weak);
    if (D)
        memset(weak, 0, D);
    /* string dependencies (a dict entry stands as the sentinel, code 0) */
    for (Py_ssize_t e = 0; e < D; e++) {
        PyObject *key = deps_v.items[e];
        if (key == NULL)
            dcodes[e] = 0;
        else if (code_of(ids, key, &dcodes[e]) < 0)
            goto done;
    }
    /* dict dependencies: ids, then weak flags */
    if (side_ids.len) {
        Py_ssize_t s = 0;
        for (Py_ssize_t e = 0; e < D; e++) {
            if (deps_v.items[e] == NULL && code_of(ids, side_ids.items[s++], &dcodes[e]) < 0)
                goto done;
        }
        s = 0;
        for (Py_ssize_t e = 0; e < D; e++) {
            if (deps_v.items[e] != NULL)
                continue;
            int w = weak_of(weak_map, side_kinds.items[s++]);
            if (w < 0)
                goto done;
            weak[e] = (char)w;
        }
    }
    /* task ids */
    for (t = 0; t < T; t++) {
        if (code_of(ids, task_ids[t], &tcodes[t]) < 0)
            goto done;
    }
    /* capabilities */
    for (Py_ssize_t e = 0; e < C; e++) {
        if (code_of(caps, caps_v.items[e], &ccodes[e]) < 0)
            goto done;
    }

    /* ---- domains and priorities (cache hits in C, misses through the Python helpers) ---- */
    domains = PyList_New(P);
    if (!domains)
        goto done;
    double *priority = F64(b_priority);
    for (Py_ssize_t i = 0; i < P; i++) {
        PyObject *plan = PyList_GET_ITEM(chunk, i);
        PyObject *out = cached_call(plan, s_domain, domain_cache, domain_fn);
        if (!out)
            goto done;
        PyList_SET_ITEM(domains, i, out);

        PyObject *hit = cached_call(plan, s_priority, priority_cache, priority_fn);
        if (!hit)
            goto done;
        double p = PyFloat_AsDouble(hit);
        Py_DECREF(hit);
        if (p == -1.0 && PyErr_Occurred())
            goto done;
        priority[i] = p;
    }

    result = PyTuple_Pack(11, b_ntasks, b_tcodes, b_dur, b_ndeps, b_dcodes, b_weak, b_ncaps, b_ccodes,
                          b_scalars, b_priority, domains);

done:
    PyMem_Free(task_ids);
    PyMem_Free(deps_v.items);
    PyMem_Free(side_ids.items);
    PyMem_Free(side_kinds.items);
    PyMem_Free(caps_v.items);
    Py_XDECREF(b_ntasks);
    Py_XDECREF(b_tcodes);
    Py_XDECREF(b_dur);
    Py_XDECREF(b_ndeps);
    Py_XDECREF(b_dcodes);
    Py_XDECREF(b_weak);
    Py_XDECREF(b_ncaps);
    Py_XDECREF(b_ccodes);
    Py_XDECREF(b_scalars);
    Py_XDECREF(b_priority);
    Py_XDECREF(domains);
    return result;
}

static PyMethodDef methods[] = {
    {"extract", extract, METH_VARARGS,
     "extract(chunk, ids, caps, weak_map, domain_fn, domain_cache, priority_fn, priority_cache) -> tuple"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_flatten", "C flattener for hive_assets.features._batch (private).", -1, methods,
};

#define INTERN(var, text)                             \
    do {                                              \
        var = PyUnicode_InternFromString(text);       \
        if (var == NULL)                              \
            return NULL;                              \
    } while (0)

PyMODINIT_FUNC PyInit__flatten(void)
{
    INTERN(s_tasks, "tasks");
    INTERN(s_task_id, "task_id");
    INTERN(s_duration, "estimated_duration_ms");
    INTERN(s_dependencies, "dependencies");
    INTERN(s_capabilities, "required_capabilities");
    INTERN(s_type, "type");
    INTERN(s_risk, "risk_score");
    INTERN(s_complexity, "complexity_score");
    INTERN(s_total, "estimated_total_duration_ms");
    INTERN(s_domain, "original_domain");
    INTERN(s_priority, "original_priority");
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Unsupported = PyErr_NewException("hive_assets.features._flatten.Unsupported", PyExc_Exception, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
