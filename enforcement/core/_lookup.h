/*
 * What the lookup kernel's files share (_lookup.c: Kernel and Scanner, the module;
 * _judge.c and _judging.c: Judge, a native transit's whole answer): the index buffers, the
 * rule tables, the record scan and the inline helpers every lookup uses.
 */
#ifndef VARCO_LOOKUP_H
#define VARCO_LOOKUP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RECORD_SIZE 18 /* <IIIIBB: start, end, zones, permit, type, flags */
#define MINUTES_PER_WEEK 10080

/* Why a plate's permits miss a transit (verdict.py's codes; higher = closer to covering). */
enum { NO_PERMIT, NOT_YET_VALID, EXPIRED, WRONG_ZONE, UNKNOWN_TYPE, OUTSIDE_WINDOW, NOT_PRIMARY };

typedef struct {
    PyObject_HEAD
    Py_buffer keys, order, buckets, offsets, records;
    Py_ssize_t n_keys, n_records;
    uint64_t n_buckets;
    int have_buffers;
} Kernel;

typedef struct {
    PyObject_HEAD
    Kernel *kernel;
    Py_buffer always, known, cude, modes, windows, starts, offsets, holidays;
    Py_buffer masked; /* bit per permit row: superseded by the change overlay (live.py) */
    Py_ssize_t n_types, n_starts;
    int have_buffers;
    char confusable[36][8]; /* per [0-9A-Z]: its OCR look-alikes, NUL-terminated */
} Scanner;

extern PyTypeObject KernelType, ScannerType, JudgeType;

static inline Py_ssize_t find(const Kernel *k, int64_t key) {
    if (key < 0) return -1;
    const uint32_t *b = k->buckets.buf, *o = k->order.buf;
    const int64_t *keys = k->keys.buf;
    uint64_t h = (uint64_t)key % k->n_buckets;
    for (uint32_t j = b[h], end = b[h + 1]; j < end; j++)
        if (keys[o[j]] == key) return (Py_ssize_t)o[j];
    return -1;
}

static inline uint32_t u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* little-endian hosts only: checked at module init */
    return v;
}

static inline int digit36(char c) {
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'Z') ? c - 'A' + 10 : -1;
}

/* plates.plate_key: the int64 key of a normalised plate, -1 when it is none. */
static inline int64_t key_of(const char *p, Py_ssize_t len) {
    if (len < 1 || len > 11) return -1;
    int64_t k = 1;
    for (Py_ssize_t i = 0; i < len; i++) {
        int d = digit36(p[i]);
        if (d < 0) return -1;
        k = k * 36 + d;
    }
    return k;
}

/* The UTC offset in seconds at epoch second t (localtime.LocalClock.offset). */
int64_t utc_offset(const Scanner *s, int64_t t);

/* Local minute of week (Monday 00:00 = 0), local day number and holiday flag at epoch
 * second t (localtime.LocalClock with the HolidayCalendar). */
void local_time(const Scanner *s, int64_t t, int *minute, int64_t *day, int *holiday);

/* The records of key position p (none when p < 0) against instant t and zone bits mask.
 * With `rows` (room for every record of p), the covering permit rows go there and their
 * count to *n_rows; without, the scan stops at the first covering one. *miss: the closest
 * miss among the others. */
void scan_records(const Scanner *s, Py_ssize_t p, long long t, unsigned long long mask,
                  uint32_t *rows, Py_ssize_t *n_rows, int *miss);

#endif
