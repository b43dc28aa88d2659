/*
 * What the Judge's files share (_judge.c: the Judge type, its methods and its answers;
 * _judging.c: the steps of Checker.check for one transit; _answer.h: the answer's bytes).
 */
#ifndef VARCO_JUDGE_H
#define VARCO_JUDGE_H

#include "_lookup.h"

#define MAX_ROWS 64       /* a plate with more records than this takes the Python path */
#define BODY_MAX 2048     /* an answer longer than this (many permits) too */
#define N_SENTINELS 16
#define HOLIDAY_INACTIVE 1
#define HOLIDAY_AS_SUNDAY 2
#define N_MISS 7 /* verdict.MISS_REASONS: the reasons a plate's permits can miss by */

typedef struct {
    int always, holidays, suspends;
    unsigned long long mask;
    long long grace_s;
    unsigned char schedule[MINUTES_PER_WEEK];
    unsigned char suspended[13 * 32];
} GateRule;

typedef struct {
    PyObject_HEAD
    Scanner *scanner;
    PyObject *overlay, *gates, *verdicts;
    PyObject *allowed_key, *inactive_key, *pending_keys[N_MISS];
    PyObject *by_plate_name, *revision_name, *stale_name, *fresh_at_name;
    GateRule *rules;
    Py_ssize_t n_rules;
    Py_buffer id_blob, id_offsets;
    Py_ssize_t n_ids;
    int have_buffers;
    double built_at, review_confidence, max_skew, max_age, max_delay, index_max_age;
    char sentinels[N_SENTINELS][12];
    int n_sentinels;
} Judge;

/* (year, month, day) of a day number from 1970-01-01 (H. Hinnant's civil_from_days). */
static inline void civil(int64_t days, int64_t *y, int *m, int *d) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* What Checker.check decided, when it is a case judged here (judge_transit). */
enum { INACTIVE, ALLOWED, PENDING };
typedef struct {
    int kind, miss;
    char text[12];
    Py_ssize_t len;
    uint32_t rows[MAX_ROWS]; /* ALLOWED: the covering permit rows, sorted, once each */
    Py_ssize_t n;
    long long grace_t; /* PENDING: grace_until, epoch seconds */
    long long revision;
} Outcome;

/* The steps of Checker.check, in its order, for one transit: 1 when judged here (`o`
 * filled), 0 when the Checker must judge it, -1 with an exception set (_judging.c). */
int judge_transit(Judge *j, PyObject *raw, PyObject *ts_obj, PyObject *gate, PyObject *conf,
                  PyObject *now_obj, Outcome *o);

#endif
