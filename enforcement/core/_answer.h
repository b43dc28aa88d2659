/*
 * A verdict's answer, written byte for byte as msgspec encodes a verdict.Verdict (_judge.c
 * writes it; tests/core/test_judge.py compares the bytes): static inline, as these run
 * several times per character of an answer.
 */
#ifndef VARCO_ANSWER_H
#define VARCO_ANSWER_H

#include "_judge.h"

typedef struct {
    char buf[BODY_MAX];
    Py_ssize_t n;
    int full;
} Body;

static inline void put(Body *b, const char *s, Py_ssize_t n) {
    if (b->full || b->n + n > BODY_MAX) {
        b->full = 1;
        return;
    }
    memcpy(b->buf + b->n, s, (size_t)n);
    b->n += n;
}

static inline void puts_(Body *b, const char *s) { put(b, s, (Py_ssize_t)strlen(s)); }

/* A JSON string msgspec writes without escapes: no control character, quote or backslash.
 * Anything else is left to the Python path (rare: event ids and permit ids are plain). */
static inline int plain(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') return 0;
    }
    return 1;
}

/* Digits by hand: snprintf costs more than the whole lookup. */
static inline void put_int(Body *b, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
    do {
        tmp[23 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[23 - n++] = '-';
    put(b, tmp + 24 - n, n);
}

static inline char *two(char *p, int v) {
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* The head every answer shares: verdict, reason, plate (the permits follow, if any). */
static inline void head(Body *b, const char *verdict, const char *reason, const char *plate,
                 Py_ssize_t len) {
    puts_(b, "{\"verdict\":\"");
    puts_(b, verdict);
    puts_(b, "\",\"reason\":\"");
    puts_(b, reason);
    puts_(b, "\",\"plate\":\"");
    put(b, plate, len);
    put(b, "\"", 1);
}

/* index_revision (omitted when 0, as a default), grace_until's text if any, event_id (the
 * caller closes the object). */
static inline void tail(Body *b, long long revision, const char *grace, const char *event,
                 Py_ssize_t event_len) {
    if (revision != 0) {
        puts_(b, ",\"index_revision\":");
        put_int(b, revision);
    }
    if (grace != NULL) {
        puts_(b, ",\"grace_until\":\"");
        puts_(b, grace);
        put(b, "\"", 1);
    }
    if (event != NULL) {
        puts_(b, ",\"event_id\":\"");
        put(b, event, event_len);
        put(b, "\"", 1);
    }
}

/* msgspec's RFC 3339 text of the local datetime at epoch second t (LocalClock.to_datetime),
 * NUL-terminated in `out` (26 bytes): "Z" for a zero offset, else +HH:MM. 0 when the offset
 * has seconds (no zone has had one since 1970) or the year is not four digits. */
static inline int local_iso(const Scanner *s, long long t, char *out) {
    int64_t off = utc_offset(s, t), local = t + off;
    int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400), year;
    int sec = (int)(local - day * 86400), month, mday;
    civil(day, &year, &month, &mday);
    if (off % 60 || off <= -86400 || off >= 86400 || year < 1000 || year > 9999) return 0;
    char *p = two(two(out, (int)(year / 100)), (int)(year % 100));
    *p++ = '-';
    p = two(p, month);
    *p++ = '-';
    p = two(p, mday);
    *p++ = 'T';
    p = two(p, sec / 3600);
    *p++ = ':';
    p = two(p, sec % 3600 / 60);
    *p++ = ':';
    p = two(p, sec % 60);
    if (off == 0) *p++ = 'Z';
    else {
        int64_t a = off < 0 ? -off : off;
        *p++ = off < 0 ? '-' : '+';
        p = two(p, (int)(a / 3600));
        *p++ = ':';
        p = two(p, (int)(a % 3600 / 60));
    }
    *p = 0;
    return 1;
}

#endif
