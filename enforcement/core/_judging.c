/*
 * The steps of Checker.check, in its order, for one transit the Judge answers (_judge.c):
 * the plate read settled, the gate's schedule, the index's records and rules, the overlay,
 * confidence, near-matches, delivery and the index's age. Anything the C does not judge
 * returns 0 and the Checker, the reference, judges it.
 */
#include "_judge.h"

/* ---- the plate read ------------------------------------------------------------------ */

static int italian_letter(char c) { /* Italian plates never use I, O, Q, U */
    return c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q' && c != 'U';
}

/* plates.normalise's first branch: an ASCII read whose upper case is 1..11 of [0-9A-Z], not
 * 7 long unless a valid Italian plate (an OCR fix could change it), and no sentinel; its
 * text into `out`. 0: any other read (the Python normalises it). */
static int settled(const Judge *j, PyObject *raw, char *out, Py_ssize_t *len) {
    if (!PyUnicode_Check(raw) || !PyUnicode_IS_ASCII(raw)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(raw);
    if (n < 1 || n > 11) return 0;
    const char *p = (const char *)PyUnicode_1BYTE_DATA(raw);
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i] >= 'a' && p[i] <= 'z' ? (char)(p[i] - 32) : p[i];
        if (digit36(c) < 0) return 0;
        out[i] = c;
    }
    out[n] = 0;
    if (n == 7) {
        const char *c = out;
        int digits = c[2] >= '0' && c[2] <= '9' && c[3] >= '0' && c[3] <= '9' && c[4] >= '0' &&
                     c[4] <= '9';
        int tail = (italian_letter(c[5]) && italian_letter(c[6])) ||
                   (c[5] >= '0' && c[5] <= '9' && c[6] >= '0' && c[6] <= '9');
        if (!italian_letter(c[0]) || !italian_letter(c[1]) || !digits || !tail) return 0;
    }
    for (int i = 0; i < j->n_sentinels; i++)
        if (strcmp(out, j->sentinels[i]) == 0) return 0;
    *len = n;
    return 1;
}

/* ---- the gate --------------------------------------------------------------------------- */

/* rules.Rules.gate_active: suspensions, holidays, the weekly schedule. */
static int gate_active(const Scanner *s, const GateRule *g, long long t) {
    if (g->always) return 1;
    int minute, holiday, month, mday;
    int64_t day, year;
    local_time(s, t, &minute, &day, &holiday);
    if (g->suspends) {
        civil(day, &year, &month, &mday);
        if (g->suspended[month * 32 + mday]) return 0;
    }
    if (holiday && g->holidays == HOLIDAY_INACTIVE) return 0;
    if (holiday && g->holidays == HOLIDAY_AS_SUNDAY) minute = 6 * 1440 + minute % 1440;
    return g->schedule[minute];
}

/* ---- the index, the overlay, the doubts --------------------------------------------------- */

/* Whether `text` is among the overlay's changed plates (then the Python path judges). */
static int in_overlay(PyObject *by_plate, const char *text, Py_ssize_t len) {
    PyObject *key = PyUnicode_FromStringAndSize(text, len);
    if (key == NULL) return -1;
    int found = PyDict_Contains(by_plate, key);
    Py_DECREF(key);
    return found;
}

/* A near-match (Checker.near_matches): a single-confusion variant covered by the snapshot,
 * or one the overlay has changes for (-1: error). */
static int near(const Judge *j, PyObject *by_plate, const char *text, Py_ssize_t len,
                long long t, unsigned long long mask) {
    const Scanner *s = j->scanner;
    char buf[12];
    Py_ssize_t n;
    int miss;
    memcpy(buf, text, (size_t)len + 1);
    for (Py_ssize_t i = 0; i < len; i++) {
        for (const char *sub = s->confusable[digit36(text[i])]; *sub; sub++) {
            buf[i] = *sub;
            Py_ssize_t p = find(s->kernel, key_of(buf, len));
            if (p >= 0) {
                scan_records(s, p, t, mask, NULL, &n, &miss);
                if (n) return 1;
            }
            if (PyDict_GET_SIZE(by_plate)) {
                int found = in_overlay(by_plate, buf, len);
                if (found) return found;
            }
        }
        buf[i] = text[i];
    }
    return 0;
}

static int cmp_rows(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* (_judge.h) */
int judge_transit(Judge *j, PyObject *raw, PyObject *ts_obj, PyObject *gate, PyObject *conf,
                  PyObject *now_obj, Outcome *o) {
    double ts = PyFloat_AsDouble(ts_obj), now = PyFloat_AsDouble(now_obj);
    if (PyErr_Occurred()) return -1;
    if (!settled(j, raw, o->text, &o->len) || !(ts >= 0 && ts < 4294967296.0)) return 0;
    PyObject *number = PyDict_GetItemWithError(j->gates, gate);
    if (number == NULL) return PyErr_Occurred() ? -1 : 0; /* UnknownGate */
    const GateRule *g = &j->rules[PyLong_AsSsize_t(number)];
    const Scanner *s = j->scanner;
    const char *text = o->text;
    Py_ssize_t len = o->len;
    long long t = (long long)ts; /* int(ts): both truncate */
    int rc = 0;
    PyObject *by_plate = NULL, *revision = NULL;

    if (!gate_active(s, g, t)) {
        o->kind = INACTIVE;
        goto judged;
    }
    if (t > now + j->max_skew || t < now - j->max_age) return 0; /* clock_skew, too_old */
    Py_ssize_t p = find(s->kernel, key_of(text, len));
    const uint32_t *off = s->kernel->offsets.buf;
    if (p >= 0 && off[p + 1] - off[p] > MAX_ROWS) return 0;
    scan_records(s, p, t, g->mask, o->rows, &o->n, &o->miss);
    by_plate = PyObject_GetAttr(j->overlay, j->by_plate_name);
    if (by_plate == NULL || !PyDict_Check(by_plate)) goto error;
    if (PyDict_GET_SIZE(by_plate)) { /* the plate's changed permits: the Python path */
        int changed = in_overlay(by_plate, text, len);
        if (changed) goto out; /* (or an error: -1) */
    }
    if (o->n > 0) {
        Py_ssize_t n = 0;
        qsort(o->rows, (size_t)o->n, sizeof *o->rows, cmp_rows);
        for (Py_ssize_t i = 0; i < o->n; i++) /* two periods of one permit: once */
            if (i == 0 || o->rows[i] != o->rows[i - 1]) o->rows[n++] = o->rows[i];
        o->n = n;
        o->kind = ALLOWED;
        goto judged;
    }
    if (conf != Py_None) { /* low_confidence */
        double c = PyFloat_AsDouble(conf);
        if (c == -1 && PyErr_Occurred()) goto error;
        if (c < j->review_confidence) goto out;
    }
    int found = near(j, by_plate, text, len, t, g->mask);
    if (found) goto out; /* near_match (or an error: -1) */
    if (now - (double)t > j->max_delay) goto out; /* late_delivery */
    PyObject *stale = PyObject_GetAttr(j->overlay, j->stale_name);
    PyObject *fresh = stale == NULL ? NULL : PyObject_GetAttr(j->overlay, j->fresh_at_name);
    double fresh_at = fresh == NULL ? -1 : PyFloat_AsDouble(fresh);
    int stale_now = stale != Py_None;
    Py_XDECREF(stale);
    Py_XDECREF(fresh);
    if (PyErr_Occurred()) goto error;
    if (stale_now || now - (fresh_at > j->built_at ? fresh_at : j->built_at) > j->index_max_age)
        goto out; /* index_stale */
    o->kind = PENDING;
    o->grace_t = t + g->grace_s;
judged:
    revision = PyObject_GetAttr(j->overlay, j->revision_name);
    if (revision == NULL) goto error;
    o->revision = PyLong_AsLongLong(revision);
    if (o->revision == -1 && PyErr_Occurred()) goto error;
    rc = 1;
    goto out;
error:
    rc = -1;
out:
    if (rc == 0 && PyErr_Occurred()) rc = -1;
    Py_XDECREF(by_plate);
    Py_XDECREF(revision);
    return rc;
}
