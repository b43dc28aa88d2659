/*
 * Lookup kernel for enforcement.index: the same hash-directory walk and record reads as the
 * pure-Python path in index.py, without the interpreter's per-step cost (~10x fewer ns on a
 * lookup). Optional: index.py falls back to Python when this module is not built.
 *
 * The buffers are the snapshot's arrays (memory-mapped, read-only). They are validated once
 * at construction (every bucket, order and offset entry in range), so a lookup never reads
 * outside them even if a snapshot passed its checksum but was built wrong.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RECORD_SIZE 18 /* <IIIIBB: start, end, zones, permit, type, flags */

typedef struct {
    PyObject_HEAD
    Py_buffer keys, order, buckets, offsets, records;
    Py_ssize_t n_keys, n_records;
    uint64_t n_buckets;
    int have_buffers;
} Kernel;

static void release(Kernel *k) {
    if (k->have_buffers) {
        PyBuffer_Release(&k->keys);
        PyBuffer_Release(&k->order);
        PyBuffer_Release(&k->buckets);
        PyBuffer_Release(&k->offsets);
        PyBuffer_Release(&k->records);
        k->have_buffers = 0;
    }
}

static void Kernel_dealloc(Kernel *k) {
    release(k);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static int fail(const char *msg) {
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

static int Kernel_init(Kernel *k, PyObject *args, PyObject *kw) {
    PyObject *keys, *order, *buckets, *offsets, *records;
    if (!PyArg_ParseTuple(args, "OOOOO", &keys, &order, &buckets, &offsets, &records))
        return -1;
    release(k);
    memset(&k->keys, 0, sizeof(Py_buffer) * 5);
    if (PyObject_GetBuffer(keys, &k->keys, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(order, &k->order, PyBUF_C_CONTIGUOUS) < 0) goto err1;
    if (PyObject_GetBuffer(buckets, &k->buckets, PyBUF_C_CONTIGUOUS) < 0) goto err2;
    if (PyObject_GetBuffer(offsets, &k->offsets, PyBUF_C_CONTIGUOUS) < 0) goto err3;
    if (PyObject_GetBuffer(records, &k->records, PyBUF_C_CONTIGUOUS) < 0) goto err4;
    k->have_buffers = 1;

    if (k->keys.len % 8) return fail("keys: not int64");
    k->n_keys = k->keys.len / 8;
    if (k->order.len != k->n_keys * 4) return fail("order: wrong length");
    if (k->buckets.len % 4 || k->buckets.len < 8) return fail("buckets: wrong length");
    k->n_buckets = (uint64_t)(k->buckets.len / 4 - 1);
    if (k->offsets.len != (k->n_keys + 1) * 4) return fail("offsets: wrong length");
    if (k->records.len % RECORD_SIZE) return fail("records: wrong length");
    k->n_records = k->records.len / RECORD_SIZE;

    const uint32_t *b = k->buckets.buf, *o = k->order.buf, *off = k->offsets.buf;
    for (uint64_t i = 0; i < k->n_buckets; i++)
        if (b[i] > b[i + 1]) return fail("buckets: not monotonic");
    if (b[0] != 0 || b[k->n_buckets] != (uint64_t)k->n_keys) return fail("buckets: bad ends");
    for (Py_ssize_t i = 0; i < k->n_keys; i++) {
        if (o[i] >= (uint64_t)k->n_keys) return fail("order: entry out of range");
        if (off[i] > off[i + 1]) return fail("offsets: not monotonic");
    }
    if (off[k->n_keys] != (uint64_t)k->n_records) return fail("offsets: bad end");
    return 0;
err4: PyBuffer_Release(&k->offsets);
err3: PyBuffer_Release(&k->buckets);
err2: PyBuffer_Release(&k->order);
err1: PyBuffer_Release(&k->keys);
    return -1;
}

static inline Py_ssize_t find(const Kernel *k, int64_t key) {
    if (key < 0) return -1;
    const uint32_t *b = k->buckets.buf, *o = k->order.buf;
    const int64_t *keys = k->keys.buf;
    uint64_t h = (uint64_t)key % k->n_buckets;
    for (uint32_t j = b[h], end = b[h + 1]; j < end; j++)
        if (keys[o[j]] == key) return (Py_ssize_t)o[j];
    return -1;
}

static int as_key(PyObject *arg, int64_t *out) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = overflow ? -1 : (int64_t)v; /* out of int64: no such plate */
    return 0;
}

static PyObject *Kernel_position(Kernel *k, PyObject *arg) {
    int64_t key;
    if (as_key(arg, &key) < 0) return NULL;
    return PyLong_FromSsize_t(find(k, key));
}

static inline uint32_t u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* little-endian hosts only: checked at module init */
    return v;
}

static PyObject *Kernel_records(Kernel *k, PyObject *arg) {
    int64_t key;
    if (as_key(arg, &key) < 0) return NULL;
    Py_ssize_t p = find(k, key);
    if (p < 0) return PyTuple_New(0);
    const uint32_t *off = k->offsets.buf;
    uint32_t lo = off[p], hi = off[p + 1];
    PyObject *out = PyTuple_New(hi - lo);
    if (!out) return NULL;
    const unsigned char *base = (const unsigned char *)k->records.buf;
    for (uint32_t i = lo; i < hi; i++) {
        const unsigned char *r = base + (size_t)i * RECORD_SIZE;
        PyObject *t = Py_BuildValue("(kkkkBB)", (unsigned long)u32(r), (unsigned long)u32(r + 4),
                                    (unsigned long)u32(r + 8), (unsigned long)u32(r + 12),
                                    r[16], r[17]);
        if (!t) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i - lo, t);
    }
    return out;
}

/* ranges(keys_int64, lo_out_int64, hi_out_int64): record range of each key (lo == hi: none) */
static PyObject *Kernel_ranges(Kernel *k, PyObject *args) {
    Py_buffer q, lo, hi;
    if (!PyArg_ParseTuple(args, "y*w*w*", &q, &lo, &hi)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = q.len / 8;
    if (q.len % 8 || lo.len != q.len || hi.len != q.len) {
        PyErr_SetString(PyExc_ValueError, "ranges: int64 buffers of equal length expected");
        goto done;
    }
    const int64_t *qk = q.buf;
    int64_t *lo_out = lo.buf, *hi_out = hi.buf;
    const uint32_t *off = k->offsets.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t p = find(k, qk[i]);
        lo_out[i] = p < 0 ? 0 : off[p];
        hi_out[i] = p < 0 ? 0 : off[p + 1];
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&q);
    PyBuffer_Release(&lo);
    PyBuffer_Release(&hi);
    return result;
}

static PyMethodDef Kernel_methods[] = {
    {"position", (PyCFunction)Kernel_position, METH_O, "Position of a plate key, or -1."},
    {"records", (PyCFunction)Kernel_records, METH_O,
     "Records of a plate key: tuple of (start, end, zones, permit, type, flags)."},
    {"ranges", (PyCFunction)Kernel_ranges, METH_VARARGS,
     "ranges(keys, lo_out, hi_out): record range of each key, into int64 buffers."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "enforcement._lookup.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Kernel(keys, order, buckets, offsets, records): lookups over index buffers.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lookup", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__lookup(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "the lookup kernel needs a little-endian host");
        return NULL;
    }
    if (PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
