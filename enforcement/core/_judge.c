/*
 * Judge: a native transit's answer in one call, from the decoded fields to the encoded JSON
 * body, for the common cases: a settled plate read (plates.normalise returns it upper-cased,
 * unchanged) at a known gate, judged `not_enforced`, `allowed`, or `pending` with no doubt
 * (no near-match, confidence at or above the review threshold, delivered in time, index
 * fresh). Everything else returns None, and the caller takes checker.Checker's path, which
 * stays the reference: the bytes here must be those ENCODER.encode(Checker.check(...)) gives
 * (tests/core/test_judge.py compares them over random transits).
 *
 * Why in C: the Python path spends more time building a Plate, a Verdict, permit-id strings
 * and a datetime, then encoding them, than the index lookup itself takes.
 *
 * This file: the type, its methods and their answers; the judging itself is _judging.c,
 * the answer's bytes _answer.h, what they share _judge.h.
 *
 *   Judge(scanner, overlay, id_blob, id_offsets, built_at, gates, limits, verdicts,
 *         sentinels, reasons)
 *   native(plate, ts, gate, confidence, now, event_id) -> bytes | None
 *   verdict(plate, ts, gate, confidence, now) -> the verdict's fields | None (for a record)
 *   logged(plate, ts, gate, confidence, now, event_id, transit_id) -> (native's body with
 *       the transit id, (verdict, reason), plate, permits, revision, grace_until) | None
 * `gates`: gate code -> (always, holiday mode, zone mask, grace s, schedule, suspended),
 * `suspended` a byte per month * 32 + day; `limits`: (review_confidence, max_clock_skew_s,
 * max_transit_age_s, max_delivery_delay_s, index_max_age_s); `verdicts` the metrics'
 * (verdict, reason) -> count dict, counted here for each answer given.
 */
#include "_answer.h"

/* verdict.MISS_REASONS, in code order: checked against the Python's at construction. */
static const char *const MISS[N_MISS] = {"no_permit",      "not_yet_valid",  "expired",
                                         "wrong_zone",     "unknown_type",   "outside_window",
                                         "not_primary_plate"};

static void Judge_clear(Judge *j) {
    if (j->have_buffers) {
        PyBuffer_Release(&j->id_blob);
        PyBuffer_Release(&j->id_offsets);
        j->have_buffers = 0;
    }
    Py_CLEAR(j->scanner);
    Py_CLEAR(j->overlay);
    Py_CLEAR(j->gates);
    Py_CLEAR(j->verdicts);
    Py_CLEAR(j->allowed_key);
    Py_CLEAR(j->inactive_key);
    for (int i = 0; i < N_MISS; i++) Py_CLEAR(j->pending_keys[i]);
    Py_CLEAR(j->by_plate_name);
    Py_CLEAR(j->revision_name);
    Py_CLEAR(j->stale_name);
    Py_CLEAR(j->fresh_at_name);
    PyMem_Free(j->rules);
    j->rules = NULL;
}

static void Judge_dealloc(Judge *j) {
    Judge_clear(j);
    Py_TYPE(j)->tp_free((PyObject *)j);
}

static int bad(const char *msg) {
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

/* One gate's tuple into its rule; the gates dict's value becomes the rule's number. */
static int gate_rule(GateRule *g, PyObject *spec) {
    PyObject *always, *schedule, *suspended;
    int holidays;
    if (!PyArg_ParseTuple(spec, "OiKLSS", &always, &holidays, &g->mask, &g->grace_s, &schedule,
                          &suspended))
        return -1;
    if (PyBytes_GET_SIZE(schedule) != MINUTES_PER_WEEK || PyBytes_GET_SIZE(suspended) != 13 * 32)
        return bad("gate: schedule of a week's minutes and suspended days of 13 * 32 expected");
    g->always = PyObject_IsTrue(always);
    g->holidays = holidays;
    memcpy(g->schedule, PyBytes_AS_STRING(schedule), MINUTES_PER_WEEK);
    memcpy(g->suspended, PyBytes_AS_STRING(suspended), 13 * 32);
    g->suspends = memchr(g->suspended, 1, sizeof g->suspended) != NULL;
    return 0;
}

static int Judge_init(Judge *j, PyObject *args, PyObject *kw) {
    PyObject *scanner, *overlay, *blob, *offsets, *gates, *verdicts, *sentinels, *reasons;
    double built_at;
    Judge_clear(j);
    if (!PyArg_ParseTuple(args, "O!OOOdO!(ddddd)O!O!O!", &ScannerType, &scanner, &overlay, &blob,
                          &offsets, &built_at, &PyDict_Type, &gates, &j->review_confidence,
                          &j->max_skew, &j->max_age, &j->max_delay, &j->index_max_age,
                          &PyDict_Type, &verdicts, &PyTuple_Type, &sentinels, &PyTuple_Type,
                          &reasons))
        return -1;
    if (PyTuple_GET_SIZE(reasons) != N_MISS) return bad("reasons: the seven miss reasons");
    for (int i = 0; i < N_MISS; i++) {
        PyObject *r = PyTuple_GET_ITEM(reasons, i);
        const char *text = PyUnicode_Check(r) ? PyUnicode_AsUTF8(r) : NULL;
        if (!text || strcmp(text, MISS[i]) != 0) return bad("reasons: not verdict.MISS_REASONS");
    }
    if (PyTuple_GET_SIZE(sentinels) > N_SENTINELS) return bad("sentinels: too many");
    j->n_sentinels = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sentinels); i++) {
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(sentinels, i), &n);
        if (!text) return -1;
        if (n < 12) { /* a longer one never matches a plate of at most 11 characters */
            memcpy(j->sentinels[j->n_sentinels], text, (size_t)n + 1);
            j->n_sentinels++;
        }
    }
    if (PyObject_GetBuffer(blob, &j->id_blob, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(offsets, &j->id_offsets, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&j->id_blob);
        return -1;
    }
    j->have_buffers = 1;
    if (j->id_offsets.len % 4 || j->id_offsets.len < 4) return bad("id_offsets: uint32 expected");
    j->n_ids = j->id_offsets.len / 4 - 1;
    const uint32_t *off = j->id_offsets.buf;
    for (Py_ssize_t i = 0; i < j->n_ids; i++)
        if (off[i] > off[i + 1]) return bad("id_offsets: not monotonic");
    if (off[j->n_ids] > (uint64_t)j->id_blob.len) return bad("id_offsets: past the blob");

    /* The gates dict is rebuilt to map each code to its rule's number. */
    j->n_rules = PyDict_GET_SIZE(gates);
    j->rules = PyMem_Calloc((size_t)j->n_rules + 1, sizeof(GateRule));
    j->gates = PyDict_New();
    if (!j->rules || !j->gates) return -1;
    PyObject *code, *spec;
    Py_ssize_t pos = 0, i = 0;
    while (PyDict_Next(gates, &pos, &code, &spec)) {
        PyObject *number = PyLong_FromSsize_t(i);
        if (!number || gate_rule(&j->rules[i], spec) < 0 ||
            PyDict_SetItem(j->gates, code, number) < 0) {
            Py_XDECREF(number);
            return -1;
        }
        Py_DECREF(number);
        i++;
    }
    j->allowed_key = Py_BuildValue("(ss)", "allowed", "permit");
    j->inactive_key = Py_BuildValue("(ss)", "not_enforced", "gate_inactive");
    for (int m = 0; m < N_MISS; m++)
        if (!(j->pending_keys[m] = Py_BuildValue("(ss)", "pending", MISS[m]))) return -1;
    j->by_plate_name = PyUnicode_InternFromString("by_plate");
    j->revision_name = PyUnicode_InternFromString("revision");
    j->stale_name = PyUnicode_InternFromString("stale");
    j->fresh_at_name = PyUnicode_InternFromString("fresh_at");
    if (!j->allowed_key || !j->inactive_key || !j->by_plate_name || !j->revision_name ||
        !j->stale_name || !j->fresh_at_name)
        return -1;
    Py_INCREF(scanner);
    j->scanner = (Scanner *)scanner;
    Py_INCREF(overlay);
    j->overlay = overlay;
    Py_INCREF(verdicts);
    j->verdicts = verdicts;
    j->built_at = built_at;
    return 0;
}

static int count(Judge *j, PyObject *key) {
    PyObject *n = PyDict_GetItemWithError(j->verdicts, key);
    if (n == NULL && PyErr_Occurred()) return -1;
    long long v = n == NULL ? 0 : PyLong_AsLongLong(n);
    if (v == -1 && PyErr_Occurred()) return -1;
    PyObject *next = PyLong_FromLongLong(v + 1);
    if (next == NULL) return -1;
    int rc = PyDict_SetItem(j->verdicts, key, next);
    Py_DECREF(next);
    return rc;
}

/* The covering permits' ids (row order is id order: the id table is sorted). 0 when one
 * is not plain JSON text. */
static int put_permits(Body *b, const Judge *j, const Outcome *o) {
    const uint32_t *off = j->id_offsets.buf;
    const char *blob = j->id_blob.buf;
    puts_(b, ",\"permits\":[");
    for (Py_ssize_t i = 0; i < o->n; i++) {
        uint32_t row = o->rows[i];
        if ((Py_ssize_t)row >= j->n_ids) return 0;
        const char *id = blob + off[row];
        Py_ssize_t len = off[row + 1] - off[row];
        if (!plain(id, len)) return 0;
        put(b, i > 0 ? ",\"" : "\"", i > 0 ? 2 : 1);
        put(b, id, len);
        put(b, "\"", 1);
    }
    put(b, "]", 1);
    return 1;
}

/* Whether the event id is one the body can carry as msgspec writes it (else the Python
 * path): its text and length into `*id`, `*len` (NULL for None). */
static int event_text(PyObject *event, const char **id, Py_ssize_t *len) {
    *id = NULL;
    *len = 0;
    if (event == Py_None) return 1;
    if (!PyUnicode_Check(event) || !PyUnicode_IS_ASCII(event)) return 0;
    *id = (const char *)PyUnicode_1BYTE_DATA(event);
    *len = PyUnicode_GET_LENGTH(event);
    return plain(*id, *len);
}

/* The answer's body for `o` up to, without, its closing brace; its (verdict, reason) key in
 * the metrics' counter, or NULL when it cannot be written here (the Python path). */
static PyObject *write_body(const Judge *j, const Outcome *o, const char *event_id,
                            Py_ssize_t event_len, Body *b) {
    char grace[32];
    b->n = 0;
    b->full = 0;
    if (o->kind == INACTIVE) {
        head(b, "not_enforced", "gate_inactive", o->text, o->len);
        tail(b, o->revision, NULL, event_id, event_len);
        return b->full ? NULL : j->inactive_key;
    }
    if (o->kind == ALLOWED) {
        head(b, "allowed", "permit", o->text, o->len);
        if (!put_permits(b, j, o)) return NULL;
        tail(b, o->revision, NULL, event_id, event_len);
        return b->full ? NULL : j->allowed_key;
    }
    if (!local_iso(j->scanner, o->grace_t, grace)) return NULL;
    head(b, "pending", MISS[o->miss], o->text, o->len);
    tail(b, o->revision, grace, event_id, event_len);
    return b->full ? NULL : j->pending_keys[o->miss];
}

static PyObject *Judge_native(Judge *j, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "native(plate, ts, gate, confidence, now, event_id)");
        return NULL;
    }
    const char *event_id;
    Py_ssize_t event_len;
    if (!event_text(args[5], &event_id, &event_len)) Py_RETURN_NONE;
    Outcome o;
    int rc = judge_transit(j, args[0], args[1], args[2], args[3], args[4], &o);
    if (rc <= 0) {
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    Body b; /* (not zeroed: 2 kB) */
    PyObject *key = write_body(j, &o, event_id, event_len, &b);
    put(&b, "}", 1);
    if (key == NULL || b.full) Py_RETURN_NONE;
    if (count(j, key) < 0) return NULL;
    return PyBytes_FromStringAndSize(b.buf, b.n);
}

/* The covering permits' ids as a list of str (empty unless ALLOWED); NULL with an exception
 * set, or without one for a row past the id table (then the Python path). */
static PyObject *permit_list(const Judge *j, const Outcome *o) {
    Py_ssize_t n = o->kind == ALLOWED ? o->n : 0;
    PyObject *ids = PyList_New(n);
    const uint32_t *off = j->id_offsets.buf;
    for (Py_ssize_t i = 0; ids && i < n; i++) {
        uint32_t row = o->rows[i];
        PyObject *id = (Py_ssize_t)row < j->n_ids
                           ? PyUnicode_DecodeUTF8((const char *)j->id_blob.buf + off[row],
                                                  off[row + 1] - off[row], NULL)
                           : NULL;
        if (id == NULL) {
            Py_CLEAR(ids);
        } else
            PyList_SET_ITEM(ids, i, id);
    }
    return ids;
}

/* grace_until, epoch seconds, for a record: an int when pending, else None. */
static PyObject *grace_of(const Outcome *o) {
    if (o->kind == PENDING) return PyLong_FromLongLong(o->grace_t);
    Py_RETURN_NONE;
}

/* verdict(...) -> (verdict, reason, plate, permits, index_revision, grace_until epoch s or
 * None): what a record of the transit needs, without a Verdict; not counted (whoever
 * answers counts). */
static PyObject *Judge_verdict(Judge *j, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "verdict(plate, ts, gate, confidence, now)");
        return NULL;
    }
    Outcome o;
    int rc = judge_transit(j, args[0], args[1], args[2], args[3], args[4], &o);
    if (rc <= 0) {
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *key = o.kind == INACTIVE  ? j->inactive_key
                    : o.kind == ALLOWED ? j->allowed_key
                                        : j->pending_keys[o.miss];
    PyObject *ids = permit_list(j, &o);
    if (ids == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(OOs#NLN)", PyTuple_GET_ITEM(key, 0), PyTuple_GET_ITEM(key, 1), o.text,
                         o.len, ids, o.revision, grace_of(&o));
}

/* logged(plate, ts, gate, confidence, now, event_id, transit_id) -> (body, (verdict,
 * reason), plate, permits, index_revision, grace_until epoch s or None), or None: a logged
 * transit's answer (native's bytes with the transit id) and what its record needs, in one
 * judging; the key is the metrics' counter key, not counted here (the caller counts once
 * the record is written). */
static PyObject *Judge_logged(Judge *j, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "logged(plate, ts, gate, confidence, now, event_id, transit_id)");
        return NULL;
    }
    const char *event_id, *tid;
    Py_ssize_t event_len, tid_len;
    if (!event_text(args[5], &event_id, &event_len) || args[6] == Py_None ||
        !event_text(args[6], &tid, &tid_len))
        Py_RETURN_NONE;
    Outcome o;
    int rc = judge_transit(j, args[0], args[1], args[2], args[3], args[4], &o);
    if (rc <= 0) {
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    Body b; /* (not zeroed: 2 kB) */
    PyObject *key = write_body(j, &o, event_id, event_len, &b);
    puts_(&b, ",\"transit_id\":\"");
    put(&b, tid, tid_len);
    put(&b, "\"}", 2);
    if (key == NULL || b.full) Py_RETURN_NONE;
    PyObject *ids = permit_list(j, &o);
    if (ids == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(y#Os#NLN)", b.buf, b.n, key, o.text, o.len, ids, o.revision,
                         grace_of(&o));
}

static PyMethodDef Judge_methods[] = {
    {"native", (PyCFunction)(void (*)(void))Judge_native, METH_FASTCALL,
     "native(plate, ts, gate, confidence, now, event_id) -> the answer's JSON bytes, or None: "
     "take the Python path"},
    {"verdict", (PyCFunction)(void (*)(void))Judge_verdict, METH_FASTCALL,
     "verdict(plate, ts, gate, confidence, now) -> (verdict, reason, plate, permits, "
     "index_revision, grace_until epoch seconds or None), or None: take the Python path"},
    {"logged", (PyCFunction)(void (*)(void))Judge_logged, METH_FASTCALL,
     "logged(plate, ts, gate, confidence, now, event_id, transit_id) -> (body, (verdict, "
     "reason), plate, permits, index_revision, grace_until epoch seconds or None), or None: "
     "take the Python path"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject JudgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "enforcement.core._lookup.Judge",
    .tp_basicsize = sizeof(Judge),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A native transit's answer in one call, for the common cases (see _judge.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Judge_init,
    .tp_dealloc = (destructor)Judge_dealloc,
    .tp_methods = Judge_methods,
};
