/* Optional C fast path of `hive_assets.data._documents.structure_problems` (private).
 *
 * `sane(doc, max_depth)` returns True only when the Python walk would return [] for `doc`:
 *   - the root is an exact dict without the stores' unreadable placeholder field, or an exact list;
 *   - every container below it is an exact dict or list, none deeper than `max_depth` (the root is level 1);
 *   - every exact-str key and value is valid text (UTF-8 refuses exactly the surrogate code points);
 *   - every other value is a leaf the walk ignores (not a Mapping, list or tuple).
 * Anything else (a Mapping that is not a dict, a tuple, a subclass of dict or list, invalid text, a
 * container too deep, an error) returns False, and the caller runs the Python walk, which finds the
 * problem or none. So no result depends on this module: it only makes the common case, a sane tree of
 * dicts, lists, numbers and text, cheap (collection validates every document it reads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* deeper limits go to the Python walk: this one recurses, and the C stack is not the heap */
#define MAX_C_DEPTH 256

static PyObject *unreadable_field; /* "$hive_unreadable" (`_documents.UNREADABLE_FIELD`) */
static PyObject *mapping_abc;      /* collections.abc.Mapping */
static PyObject *datetime_type;    /* datetime.datetime: a leaf of every MongoDB document */

/* 1: valid text; 0: holds a surrogate code point, which no UTF-8 writer accepts */
static int valid_text(PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000 /* a legacy string may not be ready before 3.12 */
    if (PyUnicode_READY(text) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_1BYTE_KIND) /* ASCII or Latin-1: no surrogate fits */
        return 1;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF)
            return 0;
    }
    return 1;
}

static int walk(PyObject *node, int depth, int max_depth);

/* 1: the value is sane; 0: not known to be */
static int value_sane(PyObject *value, int depth, int max_depth)
{
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type)
        return valid_text(value);
    if (type == &PyDict_Type || type == &PyList_Type)
        return walk(value, depth + 1, max_depth);
    if (type == &PyLong_Type || type == &PyFloat_Type || type == &PyBool_Type || value == Py_None
        || (PyObject *)type == datetime_type)
        return 1;
    /* other types are leaves unless the walk would enter them as containers */
    if (PyTuple_Check(value) || PyList_Check(value) || PyDict_Check(value))
        return 0;
    Py_INCREF(value); /* isinstance may run Python code */
    int is_mapping = PyObject_IsInstance(value, mapping_abc);
    Py_DECREF(value);
    if (is_mapping < 0) {
        PyErr_Clear();
        return 0;
    }
    return !is_mapping;
}

/* 1: `node` (an exact dict or list at level `depth`) and everything below it are sane; 0: not known */
static int walk(PyObject *node, int depth, int max_depth)
{
    if (depth > max_depth)
        return 0;
    if (PyDict_CheckExact(node)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(node, &pos, &key, &value)) {
            if (PyUnicode_CheckExact(key) && !valid_text(key))
                return 0;
            if (!value_sane(value, depth, max_depth))
                return 0;
        }
        return 1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(node); i++) {
        if (!value_sane(PyList_GET_ITEM(node, i), depth, max_depth))
            return 0;
    }
    return 1;
}

static PyObject *sane(PyObject *self, PyObject *args)
{
    PyObject *doc, *limit;
    if (!PyArg_ParseTuple(args, "OO:sane", &doc, &limit))
        return NULL;
    /* an int in [1, MAX_C_DEPTH]; any other limit (huge, a float, not a number) is the walk's to judge */
    if (!PyLong_CheckExact(limit))
        Py_RETURN_FALSE;
    int overflow;
    long max_depth = PyLong_AsLongAndOverflow(limit, &overflow);
    if (overflow || max_depth < 1 || max_depth > MAX_C_DEPTH) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    if (PyDict_CheckExact(doc)) {
        if (PyDict_Contains(doc, unreadable_field) != 0) { /* the placeholder (or an error): the walk judges it */
            PyErr_Clear();
            Py_RETURN_FALSE;
        }
    }
    else if (!PyList_CheckExact(doc))
        Py_RETURN_FALSE;
    if (walk(doc, 1, (int)max_depth))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"sane", sane, METH_VARARGS,
     "sane(doc, max_depth) -> bool: True only if structure_problems(doc, max_depth) would return []"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_structure", "C fast path of hive_assets.data._documents.structure_problems (private).",
    -1, methods,
};

static PyObject *attribute_of(const char *module_name, const char *name)
{
    PyObject *imported = PyImport_ImportModule(module_name);
    if (imported == NULL)
        return NULL;
    PyObject *value = PyObject_GetAttrString(imported, name);
    Py_DECREF(imported);
    return value;
}

PyMODINIT_FUNC PyInit__structure(void)
{
    unreadable_field = PyUnicode_InternFromString("$hive_unreadable");
    if (unreadable_field == NULL)
        return NULL;
    mapping_abc = attribute_of("collections.abc", "Mapping");
    if (mapping_abc == NULL)
        return NULL;
    datetime_type = attribute_of("datetime", "datetime");
    if (datetime_type == NULL)
        return NULL;
    return PyModule_Create(&module);
}
