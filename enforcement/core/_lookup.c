/*
 * Lookup kernel for enforcement.index, optional (index.py and checker.py fall back to Python
 * when this module is not built):
 *   Kernel   the hash-directory walk and record reads of index.PermitIndex
 *   Scanner  the verdict's record scan with the rule tables, and the near-match search, of
 *            checker.Checker (scan_python and near_python are the references; tests compare)
 *   Judge    (_judge.c, _judging.c) a native transit's whole answer, encoded, for the
 *            common case
 * All do what the Python does without the interpreter's per-step cost.
 *
 * The buffers are the snapshot's arrays (memory-mapped, read-only). They are validated once
 * at construction (every bucket, order and offset entry in range), so a lookup never reads
 * outside them even if a snapshot passed its checksum but was built wrong.
 */
#include "_lookup.h"

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

PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "enforcement.core._lookup.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Kernel(keys, order, buckets, offsets, records): lookups over index buffers.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
};


/* ---------------------------------------------------------------------------------------
 * Scanner: the verdict's record scan with the rule tables (see checker.Checker.scan_mask,
 * the Python reference this must match). Bound once per live index:
 *   Scanner(kernel, type_always, type_known, type_cude, type_modes, type_windows,
 *           clock_starts, clock_offsets, holidays)
 * scan(text, t, mask) -> (covering permit rows, closest miss code)
 * --------------------------------------------------------------------------------------- */

static void Scanner_release(Scanner *s) {
    if (s->have_buffers) {
        Py_buffer *b[] = {&s->always, &s->known, &s->cude, &s->modes, &s->windows, &s->starts,
                          &s->offsets, &s->holidays, &s->masked};
        for (size_t i = 0; i < sizeof b / sizeof *b; i++) PyBuffer_Release(b[i]);
        s->have_buffers = 0;
    }
    Py_CLEAR(s->kernel);
}

static void Scanner_dealloc(Scanner *s) {
    Scanner_release(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int Scanner_init(Scanner *s, PyObject *args, PyObject *kw) {
    PyObject *kernel, *o[9], *confusable;
    if (!PyArg_ParseTuple(args, "O!OOOOOOOOOO!", &KernelType, &kernel, &o[0], &o[1], &o[2],
                          &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &PyDict_Type, &confusable))
        return -1;
    memset(s->confusable, 0, sizeof s->confusable);
    PyObject *ch, *subs;
    Py_ssize_t pos = 0;
    while (PyDict_Next(confusable, &pos, &ch, &subs)) {
        Py_ssize_t n_ch, n_subs;
        const char *c = PyUnicode_AsUTF8AndSize(ch, &n_ch);
        const char *v = PyUnicode_AsUTF8AndSize(subs, &n_subs);
        if (!c || !v) return -1;
        int d = n_ch != 1 ? -1 : (c[0] >= '0' && c[0] <= '9') ? c[0] - '0'
              : (c[0] >= 'A' && c[0] <= 'Z') ? c[0] - 'A' + 10 : -1;
        if (d < 0 || n_subs > 7) return fail("confusable: [0-9A-Z] -> at most 7 look-alikes");
        memcpy(s->confusable[d], v, (size_t)n_subs);
    }
    Scanner_release(s);
    Py_buffer *b[] = {&s->always, &s->known, &s->cude, &s->modes, &s->windows, &s->starts,
                      &s->offsets, &s->holidays, &s->masked};
    for (int i = 0; i < 9; i++) {
        if (PyObject_GetBuffer(o[i], b[i], PyBUF_C_CONTIGUOUS) < 0) {
            for (int j = 0; j < i; j++) PyBuffer_Release(b[j]);
            return -1;
        }
    }
    s->have_buffers = 1;
    Py_INCREF(kernel);
    s->kernel = (Kernel *)kernel;
    s->n_types = s->always.len;
    if (s->known.len != s->n_types || s->cude.len != s->n_types || s->modes.len != s->n_types ||
        s->windows.len != s->n_types * MINUTES_PER_WEEK)
        return fail("type tables disagree in length");
    if (s->starts.len % 8 || s->starts.len != s->offsets.len || s->starts.len == 0)
        return fail("clock tables: int64 arrays of equal, non-zero length expected");
    s->n_starts = s->starts.len / 8;
    return 0;
}

int64_t utc_offset(const Scanner *s, int64_t t) {
    const int64_t *starts = s->starts.buf, *offsets = s->offsets.buf;
    Py_ssize_t lo = 0, hi = s->n_starts; /* last start <= t */
    while (hi - lo > 1) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (starts[mid] <= t) lo = mid; else hi = mid;
    }
    return offsets[lo];
}

void local_time(const Scanner *s, int64_t t, int *minute, int64_t *day_out, int *holiday) {
    int64_t local = t + utc_offset(s, t);
    int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t sec = local - day * 86400;
    int64_t weekday = ((day + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
    *minute = (int)(weekday * 1440 + sec / 60);
    *day_out = day;
    *holiday = day >= 0 && day < s->holidays.len && ((const unsigned char *)s->holidays.buf)[day];
}

void scan_records(const Scanner *s, Py_ssize_t p, long long t, unsigned long long mask,
                  uint32_t *rows, Py_ssize_t *n_rows, int *miss_out) {
    int miss = NO_PERMIT, have_minute = 0, minute = 0, holiday = 0;
    int64_t day;
    Py_ssize_t n = 0;
    if (p >= 0) {
        const uint32_t *off = s->kernel->offsets.buf;
        const unsigned char *base = s->kernel->records.buf;
        const unsigned char *always = s->always.buf, *known = s->known.buf, *cude = s->cude.buf,
                            *modes = s->modes.buf, *windows = s->windows.buf;
        for (uint32_t i = off[p]; i < off[p + 1]; i++) {
            const unsigned char *r = base + (size_t)i * RECORD_SIZE;
            uint32_t start = u32(r), end = u32(r + 4), zones = u32(r + 8), permit = u32(r + 12);
            unsigned char type = r[16], flags = r[17];
            int why;
            if ((Py_ssize_t)(permit >> 3) < s->masked.len &&
                ((const unsigned char *)s->masked.buf)[permit >> 3] >> (permit & 7) & 1)
                continue; /* superseded by a newer version of the permit: invisible */
            if (t < (long long)start) why = NOT_YET_VALID;
            else if (t >= (long long)end) why = EXPIRED;
            else if (!(zones & mask)) why = WRONG_ZONE;
            else if (type >= s->n_types || !known[type]) why = UNKNOWN_TYPE;
            else {
                int inside = 1;
                if (!always[type]) {
                    if (!have_minute) {
                        local_time(s, t, &minute, &day, &holiday);
                        have_minute = 1;
                    }
                    int m = minute;
                    if (holiday && modes[type] == 1) inside = 0;          /* inactive */
                    else if (holiday && modes[type] == 2) m = 6 * 1440 + minute % 1440;
                    if (inside) inside = windows[(size_t)type * MINUTES_PER_WEEK + m];
                }
                if (!inside) why = OUTSIDE_WINDOW;
                else if (cude[type] && !(flags & 1)) why = NOT_PRIMARY;
                else {
                    n++;
                    if (rows == NULL) break;
                    rows[n - 1] = permit;
                    continue;
                }
            }
            if (why > miss) miss = why;
        }
    }
    *n_rows = n;
    *miss_out = miss;
}

static int args3(PyObject *const *args, Py_ssize_t nargs, const char **text, Py_ssize_t *len,
                 long long *t, unsigned long long *mask) {
    if (nargs != 3 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "expected (text: str, t: int, mask: int)");
        return -1;
    }
    *text = PyUnicode_AsUTF8AndSize(args[0], len);
    if (!*text) return -1;
    *t = PyLong_AsLongLong(args[1]);
    if (*t == -1 && PyErr_Occurred()) return -1;
    *mask = PyLong_AsUnsignedLongLong(args[2]);
    if (*mask == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    return 0;
}

static PyObject *Scanner_scan(Scanner *s, PyObject *const *args, Py_ssize_t nargs) {
    const char *text;
    Py_ssize_t len, n;
    long long t;
    unsigned long long mask;
    if (args3(args, nargs, &text, &len, &t, &mask) < 0) return NULL;
    Py_ssize_t p = find(s->kernel, key_of(text, len));
    const uint32_t *off = s->kernel->offsets.buf;
    uint32_t *rows = PyMem_Malloc(sizeof(uint32_t) * (p < 0 ? 1 : off[p + 1] - off[p] + 1));
    if (!rows) return PyErr_NoMemory();
    int miss;
    scan_records(s, p, t, mask, rows, &n, &miss);
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(rows[i]);
        if (!v) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, v);
    }
    PyMem_Free(rows);
    return list ? Py_BuildValue("(Ni)", list, miss) : NULL;
}

/* near(text, t, mask) -> plates one OCR confusion away whose permits cover (t, mask), in the
 * order plates.confusable_variants lists them. */
static PyObject *Scanner_near(Scanner *s, PyObject *const *args, Py_ssize_t nargs) {
    const char *text;
    Py_ssize_t len, n;
    long long t;
    unsigned long long mask;
    if (args3(args, nargs, &text, &len, &t, &mask) < 0) return NULL;
    PyObject *out = PyList_New(0);
    if (!out || len < 1 || len > 11) return out;
    char buf[12];
    memcpy(buf, text, (size_t)len);
    int miss;
    for (Py_ssize_t i = 0; i < len; i++) {
        int d = digit36(text[i]);
        if (d < 0) return out;
        for (const char *sub = s->confusable[d]; *sub; sub++) {
            buf[i] = *sub;
            Py_ssize_t p = find(s->kernel, key_of(buf, len));
            if (p >= 0) {
                scan_records(s, p, t, mask, NULL, &n, &miss);
                if (n) {
                    PyObject *v = PyUnicode_FromStringAndSize(buf, len);
                    if (!v || PyList_Append(out, v) < 0) {
                        Py_XDECREF(v);
                        Py_DECREF(out);
                        return NULL;
                    }
                    Py_DECREF(v);
                }
            }
        }
        buf[i] = text[i];
    }
    return out;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan, METH_FASTCALL,
     "scan(text, t, mask) -> (covering permit rows, closest miss code)"},
    {"near", (PyCFunction)(void (*)(void))Scanner_near, METH_FASTCALL,
     "near(text, t, mask) -> covered plates one OCR confusion away"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "enforcement.core._lookup.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The verdict's record scan with the rule tables, in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lookup", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__lookup(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "the lookup kernel needs a little-endian host");
        return NULL;
    }
    if (PyType_Ready(&KernelType) < 0 || PyType_Ready(&ScannerType) < 0 ||
        PyType_Ready(&JudgeType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&KernelType);
    Py_INCREF(&ScannerType);
    Py_INCREF(&JudgeType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0 ||
        PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0 ||
        PyModule_AddObject(m, "Judge", (PyObject *)&JudgeType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
