/* Game text bytes -> a JSON string, in one pass (gateway/jsonstring.py).
 *
 * escape_utf8(data, head=b"", tail=b"") returns exactly
 *     head + msgspec.json.encode(data.replace(b"\r", b"").replace(b"\x00", b"").decode("utf-8", "replace")) + tail
 * without making the str: "\r" and NUL are dropped (SPEC 4.3), invalid UTF-8 becomes
 * U+FFFD as Python's decoder makes it (one per maximal subpart: Unicode 3.9, U+FFFD
 * substitution), and the text is escaped as msgspec escapes it (\" \\ \b \t \n \f \r,
 * other controls as \u00xx; everything else as it is). tests/test_jsonstring.py holds it
 * to that definition on any bytes (hypothesis).
 *
 * A flood of MUD text is mostly printable ASCII with an ESC or a line end every ~20
 * bytes: where SSE2 is (every x86-64), 16 bytes are checked at once and the plain ones
 * copied as blocks; each ASCII byte that needs escaping is a table's 8-byte write.
 * Elsewhere the same loop goes a byte at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* What each ASCII byte becomes: its JSON (up to 6 bytes; none for \r and NUL), written
 * as 8 bytes at once (the output has room) and advanced by its length. */
static unsigned char ascii_out[128][8];
static unsigned char ascii_len[128];

/* The length of a valid UTF-8 sequence led by c (2-4), or 0 for a byte that cannot
 * start one; *lo and *hi bound its second byte (Unicode Table 3-7). */
static inline int
sequence(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0)
            *lo = 0xA0;
        else if (c == 0xED)
            *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F;
        return 4;
    }
    return 0;
}

static inline int
is_dropped(unsigned char c)
{
    return c == '\r' || c == 0;
}

/* The most one step of the loop below writes: a block of 16 bytes, each 6 bytes at
 * most, and the 16-byte copies' overhang. */
#define ROOM 128

/* need bytes of room at *o, in *out of *cap bytes; left: input bytes still to come. */
static int
make_room(PyObject **out, unsigned char **o, Py_ssize_t *cap, Py_ssize_t need, Py_ssize_t left)
{
    Py_ssize_t used = *o - (unsigned char *)PyBytes_AS_STRING(*out);
    if (*cap - used >= need)
        return 0;
    /* Past the first guess (a quarter more than the input): half as much again, and
     * as much as the rest of the input at least. */
    Py_ssize_t more = *cap / 2 + left + need;
    if (more > PY_SSIZE_T_MAX - *cap) {
        PyErr_NoMemory();
        return -1;
    }
    *cap += more;
    if (_PyBytes_Resize(out, *cap) < 0)
        return -1;
    *o = (unsigned char *)PyBytes_AS_STRING(*out) + used;
    return 0;
}

/* head + the JSON string of data + tail, as one bytes object. */
static PyObject *
encode(Py_buffer *data, Py_buffer *head, Py_buffer *tail)
{
    const unsigned char *s = (const unsigned char *)data->buf;
    const Py_ssize_t n = data->len;
    if (n > PY_SSIZE_T_MAX / 2 - ROOM || head->len + tail->len > PY_SSIZE_T_MAX / 4)
        return PyErr_NoMemory();
    /* MUD text grows ~10% (an ESC is 6 bytes): a quarter more is room enough, mostly;
     * make_room() grows it when not. Kept under the allocator's mmap threshold for a
     * 64 KiB read, so it is not a map and an unmap each time. */
    Py_ssize_t cap = n + n / 4 + ROOM + 8 + head->len + tail->len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, cap);
    if (out == NULL)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *limit = o + cap - ROOM - tail->len;
    if (head->len > 0)  /* an empty buffer's buf may be NULL: memcpy(o, NULL, 0) is undefined */
        memcpy(o, head->buf, head->len);
    o += head->len;
    *o++ = '"';
    Py_ssize_t i = 0;
    while (i < n) {
        if (o > limit) {
            if (make_room(&out, &o, &cap, ROOM + tail->len, n - i) < 0) {
                Py_XDECREF(out);
                return NULL;
            }
            limit = (unsigned char *)PyBytes_AS_STRING(out) + cap - ROOM - tail->len;
        }
        unsigned char c;
#ifdef __SSE2__
        /* 16 bytes at a time: the mask of those that are not plain (the signed compare
         * with 0x20 takes in the bytes >= 0x80), then each ASCII one from a table and the
         * plain ones between as 16-byte copies. A non-ASCII byte ends the block. */
        if (n - i >= 32) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            const __m128i marked = _mm_or_si128(
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            unsigned mask = (unsigned)_mm_movemask_epi8(marked);
            if (mask == 0) {
                _mm_storeu_si128((__m128i *)o, v);
                o += 16;
                i += 16;
                continue;
            }
            int pos = 0, high = 0;
            while (mask) {
                int k = __builtin_ctz(mask);
                _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)(s + i + pos)));
                o += k - pos;
                c = s[i + k];
                if (c >= 0x80) {
                    i += k;
                    high = 1;
                    break;
                }
                memcpy(o, ascii_out[c], 8);
                o += ascii_len[c];
                pos = k + 1;
                mask &= mask - 1;
            }
            if (!high) {
                _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)(s + i + pos)));
                o += 16 - pos;
                i += 16;
                continue;
            }
            c = s[i];
        }
        else
#endif
        {
            c = s[i];
            if (c < 0x80) {
                memcpy(o, ascii_out[c], 8);
                o += ascii_len[c];
                i++;
                continue;
            }
        }
        /* A multi-byte character, or an invalid byte. */
        unsigned char lo, hi, seq[4] = {0, 0, 0, 0};
        int need = sequence(c, &lo, &hi), have = 1;
        seq[0] = c;
        i++;
        /* Its continuation bytes, with \r and NUL between them dropped first. */
        while (have < need && i < n) {
            unsigned char b = s[i];
            if (is_dropped(b)) {
                i++;
                continue;
            }
            if (b < lo || b > hi)
                break; /* not this sequence's: it starts the next thing */
            seq[have++] = b;
            lo = 0x80;
            hi = 0xBF;
            i++;
        }
        if (need && have == need) {
            memcpy(o, seq, 4);
            o += need;
        } else {
            *o++ = 0xEF; *o++ = 0xBF; *o++ = 0xBD;
        }
    }
    *o++ = '"';
    if (tail->len > 0)
        memcpy(o, tail->buf, tail->len);
    o += tail->len;
    if (_PyBytes_Resize(&out, (Py_ssize_t)(o - (unsigned char *)PyBytes_AS_STRING(out))) < 0)
        return NULL;
    return out;
}

static PyObject *
escape_utf8(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "escape_utf8(data, head=b'', tail=b'') takes 1 to 3 arguments");
        return NULL;
    }
    Py_buffer view, head = {0}, tail = {0};
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (nargs > 1 && PyObject_GetBuffer(args[1], &head, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (nargs > 2 && PyObject_GetBuffer(args[2], &tail, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&head);
        return NULL;
    }
    PyObject *out = encode(&view, &head, &tail);
    PyBuffer_Release(&view);
    PyBuffer_Release(&head);
    PyBuffer_Release(&tail);
    return out;
}

static PyMethodDef methods[] = {
    {"escape_utf8", (PyCFunction)(void (*)(void))escape_utf8, METH_FASTCALL,
     "escape_utf8(data, head=b'', tail=b'') -> bytes: head, game text as a JSON string "
     "(\\r and NUL dropped, invalid UTF-8 replaced) as msgspec encodes the decoded str, tail."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gateway._jsonstring",
    "Game text bytes to a JSON string in one pass (see jsonstring.py).", -1, methods,
};

static const char hexdigits[] = "0123456789abcdef";

PyMODINIT_FUNC
PyInit__jsonstring(void)
{
    for (int c = 0; c < 128; c++) {
        unsigned char *e = ascii_out[c];
        int len = 2;
        e[0] = '\\';
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\t': e[1] = 't'; break;
        case '\n': e[1] = 'n'; break;
        case '\f': e[1] = 'f'; break;
        default:
            if (c >= 0x20) {
                e[0] = (unsigned char)c;
                len = 1;
            } else {
                memcpy(e + 1, "u00", 3);
                e[4] = hexdigits[c >> 4];
                e[5] = hexdigits[c & 15];
                len = 6;
            }
        }
        ascii_len[c] = is_dropped((unsigned char)c) ? 0 : len;
    }
    return PyModule_Create(&module);
}
