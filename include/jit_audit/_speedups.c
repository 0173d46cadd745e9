/*
 * Fast path of jit_audit.flatten: DynamoDB JSON export lines to plain JSON Lines, in C.
 *
 * flatten_into(data, start, stop, out) -> (written, end, items, status)
 *
 * Flattens the complete lines of data[start:stop] into the writable buffer `out`, stopping after
 * the last complete line, at the first line it does not handle (then `end` is that line's start
 * and Python's exact reference path takes the line: it flattens it or raises a FlattenError
 * naming it), or when `out` lacks room for the next line.
 *
 * The fast path copies strings and number digits byte for byte after validating them (JSON
 * escapes, no raw control characters, well-formed UTF-8, JSON's number grammar), so its output
 * has the same values as the Python path. Anything unusual is handed back, never guessed:
 * NS sets (numeric sort), string sets with escapes (code point sort), numbers outside JSON's
 * grammar, names with escapes, NULL other than true, any grammar surprise.
 *
 * It also hands back every line that breaks one of DynamoDB's rules the Python path enforces
 * (docs/flattening.md, "Validation rules"), so that only the Python path ever decides an error: a
 * number beyond 38 significant digits or DynamoDB's range, B or BS text that is not canonical base64,
 * an empty set, a set with a member twice, an attribute name given twice in an item or a map, and
 * values nested more than 32 levels deep.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* DynamoDB's nesting limit: a value at depth 33 (33 path components) is an error. */
#define MAX_DEPTH 32

/*
 * Output never needs more than 3 * line + 64 bytes (values only shrink, except event_time and
 * event_id, which add at most twice the sort key's length); the caller reserves that much per
 * line, so the writers below need no bounds checks.
 */
typedef struct {
    const unsigned char *p;
    const unsigned char *end; /* end of the current line (points at '\n') */
    const unsigned char *readable_end; /* end of the input buffer: emit_token's 16-byte loads stay below it */
    char *out;                /* start of the output buffer */
    char *w;                  /* write position */
    int failed;               /* 1: hand the line to the Python path; 2: out of memory */
    int depth;
} Parser;

/*
 * Copy a token of the input; short ones (most names and values) with unaligned 16-byte moves.
 *
 * `src` must point into the input buffer (parser->p's buffer, which ends at readable_end): the
 * fast branch reads whole 16-byte blocks, up to 15 bytes past the token, and decides whether it
 * may by comparing src with readable_end, which is only meaningful (and only defined C) for two
 * pointers into the same object. Constant text is written with EMIT_LITERAL instead.
 */
static inline void emit_token(Parser *parser, const unsigned char *src, Py_ssize_t n) {
#ifdef __SSE2__
    if (n <= 64 && parser->readable_end - src >= 64) {
        /* Whole 16-byte blocks: the output has room to spare and these input bytes are readable. */
        char *w = parser->w;
        for (Py_ssize_t done = 0; done < n; done += 16) {
            _mm_storeu_si128((__m128i *)(w + done), _mm_loadu_si128((const __m128i *)(src + done)));
        }
        parser->w += n;
        return;
    }
#endif
    memcpy(parser->w, src, (size_t)n);
    parser->w += n;
}

/* A token of the input buffer (never constant text: see emit_token). */
#define EMIT(parser, src, n) emit_token((parser), (const unsigned char *)(src), (Py_ssize_t)(n))

/*
 * Constant text ("true", "false", "null"): a copy of exactly its length, which the compiler turns
 * into one or two plain stores. The "" "" forces a string literal, so sizeof is its length + 1.
 */
#define EMIT_LITERAL(parser, text)                                   \
    do {                                                             \
        memcpy((parser)->w, "" text "", sizeof("" text "") - 1);     \
        (parser)->w += sizeof("" text "") - 1;                       \
    } while (0)

#define EMIT_CHAR(parser, c) (*(parser)->w++ = (char)(c))

#define FAIL(parser)          \
    do {                      \
        if (!(parser)->failed) (parser)->failed = 1; \
        return -1;            \
    } while (0)

/* 0: ordinary string byte; 1: quote; 2: backslash; 3: control character; 4: non-ASCII. */
static unsigned char string_class[256];
/* Each base64 character's 6-bit value; -1 for any other byte. */
static signed char base64_value[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        string_class[c] = c < 0x20 ? 3 : (c >= 0x80 ? 4 : 0);
    }
    string_class['"'] = 1;
    string_class['\\'] = 2;
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(base64_value, -1, sizeof(base64_value));
    for (int i = 0; i < 64; i++) base64_value[(unsigned char)alphabet[i]] = (signed char)i;
}

static inline __attribute__((always_inline)) void skip_ws(Parser *parser) {
    while (parser->p < parser->end && (*parser->p == ' ' || *parser->p == '\t' || *parser->p == '\r')) parser->p++;
}

static inline __attribute__((always_inline)) int expect(Parser *parser, unsigned char c) {
    /* Exports carry no insignificant whitespace: test the character first, skip spaces only if needed. */
    if (parser->p < parser->end && *parser->p == c) {
        parser->p++;
        return 0;
    }
    skip_ws(parser);
    if (parser->p >= parser->end || *parser->p != c) FAIL(parser);
    parser->p++;
    return 0;
}

/* After a member of a map, list or set: 1 at ',' (another member follows), 0 at the closer, -1
 * (failed) at anything else. Consumes the ',' or the closer. */
static inline __attribute__((always_inline)) int after_member(Parser *parser, unsigned char closer) {
    skip_ws(parser);
    if (parser->p < parser->end && (*parser->p == ',' || *parser->p == closer)) {
        return *parser->p++ == ',';
    }
    FAIL(parser);
}

/* Length of a well-formed UTF-8 sequence starting at p (lead byte >= 0x80), or 0. */
static inline int utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/*
 * Scan a JSON string token at parser->p (which must be '"'). On success sets start and stop to the
 * token including its quotes and *escaped to whether it holds a backslash escape. \u escapes must
 * not encode surrogates (the Python path would refuse or pair them: leave those to it).
 */
static inline __attribute__((always_inline)) int scan_string(Parser *parser, const unsigned char **start, const unsigned char **stop, int *escaped) {
    if (parser->p < parser->end && *parser->p != '"') skip_ws(parser);
    const unsigned char *p = parser->p;
    const unsigned char *end = parser->end;
    if (p >= end || *p != '"') FAIL(parser);
    *start = p++;
    *escaped = 0;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time: stop at a quote, a backslash, or any byte < 0x20 or >= 0x80. */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                           _mm_cmplt_epi8(v, space));
            int mask = _mm_movemask_epi8(special);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                goto classify;
            }
            p += 16;
        }
#endif
        while (p < end && string_class[*p] == 0) p++;
        if (p >= end) FAIL(parser);
#ifdef __SSE2__
    classify:
#endif
        if (*p == '"') {
            *stop = ++p;
            parser->p = p;
            return 0;
        }
        switch (string_class[*p]) {
        case 1:
            p++;
            *stop = p;
            parser->p = p;
            return 0;
        case 2:
            *escaped = 1;
            if (p + 1 >= end) FAIL(parser);
            /*
             * Only the escapes the reference path (orjson) writes itself may be copied, so a value
             * has the same bytes whichever path flattens it: \" \\ \b \f \n \r \t and \u00xx
             * (lowercase) for the other control characters. Any other escape goes to Python.
             */
            switch (p[1]) {
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u': {
                if (end - p < 6 || p[2] != '0' || p[3] != '0' || (p[4] != '0' && p[4] != '1')) FAIL(parser);
                unsigned char low = p[5];
                int digit = (low >= '0' && low <= '9') ? low - '0' : (low >= 'a' && low <= 'f') ? low - 'a' + 10 : -1;
                if (digit < 0) FAIL(parser);
                int code = (p[4] - '0') * 16 + digit;
                if (code == 0x08 || code == 0x09 || code == 0x0a || code == 0x0c || code == 0x0d) FAIL(parser);
                p += 6;
                break;
            }
            default:
                FAIL(parser);
            }
            break;
        case 3:
            FAIL(parser);
        default: {
            int n = utf8_sequence(p, end);
            if (!n) FAIL(parser);
            p += n;
        }
        }
    }
}

/* JSON's number grammar over [p, e). */
static int is_json_number(const unsigned char *p, const unsigned char *e) {
    if (p < e && *p == '-') p++;
    if (p >= e) return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') p++;
    } else {
        return 0;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p == e;
}

/*
 * Over [p, e), already in JSON's grammar: a number DynamoDB can hold, with at most 38 significant
 * digits (leading and trailing zeros not counted) and, unless it is 0, a magnitude from 1E-130 to
 * below 1E+126; for 0, the power of ten of its first digit within the same bounds (as the Python
 * path, which decides every number this refuses).
 */
static int is_dynamodb_number(const unsigned char *p, const unsigned char *e) {
    if (*p == '-') p++;
    long integer_digits = -1, digits = 0, first = -1, last = -1;
    for (; p < e && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            integer_digits = digits;
            continue;
        }
        if (*p != '0') {
            if (first < 0) first = digits;
            last = digits;
        }
        digits++;
    }
    if (integer_digits < 0) integer_digits = digits;
    if (first >= 0 && last - first + 1 > 38) return 0;
    long exponent = 0;
    if (p < e) {
        int negative = 0;
        p++; /* 'e' or 'E' */
        if (*p == '+' || *p == '-') negative = *p++ == '-';
        while (p < e && *p == '0') p++;
        if (e - p > 9) return 0;
        for (; p < e; p++) exponent = exponent * 10 + (*p - '0');
        if (negative) exponent = -exponent;
    }
    long adjusted = exponent + integer_digits - 1 - (first >= 0 ? first : 0);
    return adjusted >= -130 && adjusted <= 125;
}

/* Canonical base64 (RFC 4648 section 4: padded, unused bits zero) over [p, p + n). */
static signed char base64_value[256];

static int is_canonical_base64(const unsigned char *p, Py_ssize_t n) {
    if (n % 4) return 0;
    if (n == 0) return 1;
    Py_ssize_t padding = p[n - 1] == '=' ? (p[n - 2] == '=' ? 2 : 1) : 0;
    for (Py_ssize_t i = 0; i < n - padding; i++) {
        if (base64_value[p[i]] < 0) return 0;
    }
    if (padding == 1 && (base64_value[p[n - 2]] & 3)) return 0;
    if (padding == 2 && (base64_value[p[n - 3]] & 15)) return 0;
    return 1;
}

typedef struct {
    const unsigned char *start;
    Py_ssize_t len;
} Token;

static int compare_tokens(const void *a, const void *b) {
    const Token *x = (const Token *)a, *y = (const Token *)b;
    /* Compare the contents only (not the quotes): bytewise UTF-8 order is code point order, and a
       string that is a prefix of another sorts first. */
    Py_ssize_t n = (x->len < y->len ? x->len : y->len) - 2;
    int c = memcmp(x->start + 1, y->start + 1, (size_t)n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int flatten_value(Parser *parser);

/* The names of one item or map, to find a name given twice (the Python path says which). */
typedef struct {
    Token *items;
    Py_ssize_t count, capacity;
    Token small[16];
} Names;

static int add_name(Parser *parser, Names *names, const unsigned char *start, const unsigned char *stop) {
    if (names->count == names->capacity) {
        Token *grown = (Token *)PyMem_RawMalloc(sizeof(Token) * (size_t)names->capacity * 2);
        if (!grown) {
            parser->failed = 2;
            return -1;
        }
        memcpy(grown, names->items, sizeof(Token) * (size_t)names->count);
        if (names->items != names->small) PyMem_RawFree(names->items);
        names->items = grown;
        names->capacity *= 2;
    }
    names->items[names->count].start = start;
    names->items[names->count].len = stop - start;
    names->count++;
    return 0;
}

/* 1 when two names are the same string (unescaped tokens: the same bytes); sorts the names. */
static int has_repeated_name(Names *names) {
    Token *t = names->items;
    if (names->count <= 32) { /* most items and maps: a few length comparisons each */
        for (Py_ssize_t i = 1; i < names->count; i++) {
            for (Py_ssize_t j = 0; j < i; j++) {
                if (t[i].len == t[j].len && memcmp(t[i].start, t[j].start, (size_t)t[i].len) == 0) return 1;
            }
        }
        return 0;
    }
    qsort(t, (size_t)names->count, sizeof(Token), compare_tokens);
    for (Py_ssize_t i = 1; i < names->count; i++) {
        if (compare_tokens(&t[i - 1], &t[i]) == 0) return 1;
    }
    return 0;
}

static int flatten_members_into(Parser *parser, Names *names, Py_ssize_t *sort_key, Py_ssize_t *sort_key_len,
                                 int *has_event_time, int *has_event_id);

/* '{' name ':' value (',' name ':' value)* '}' with values flattened; names copied as they are,
 * each given once. */
static int flatten_members(Parser *parser, Py_ssize_t *sort_key, Py_ssize_t *sort_key_len,
                           int *has_event_time, int *has_event_id) {
    Names names;
    names.items = names.small;
    names.count = 0;
    names.capacity = 16;
    int result = flatten_members_into(parser, &names, sort_key, sort_key_len, has_event_time, has_event_id);
    if (result == 0 && names.count > 1 && has_repeated_name(&names)) {
        parser->failed = 1;
        result = -1;
    }
    if (names.items != names.small) PyMem_RawFree(names.items);
    return result;
}

static int flatten_members_into(Parser *parser, Names *names, Py_ssize_t *sort_key, Py_ssize_t *sort_key_len,
                                 int *has_event_time, int *has_event_id) {
    if (expect(parser, '{') < 0) return -1;
    EMIT_CHAR(parser, '{');
    skip_ws(parser);
    if (parser->p < parser->end && *parser->p == '}') {
        parser->p++;
        EMIT_CHAR(parser, '}');
        return 0;
    }
    for (int first = 1;; first = 0) {
        const unsigned char *start, *stop;
        int escaped;
        if (!first) EMIT_CHAR(parser, ',');
        if (scan_string(parser, &start, &stop, &escaped) < 0) return -1;
        if (escaped) FAIL(parser);
        if (add_name(parser, names, start, stop) < 0) return -1;
        EMIT(parser, start, stop - start);
        EMIT_CHAR(parser, ':');
        if (expect(parser, ':') < 0) return -1;
        Py_ssize_t name_len = stop - start - 2;
        Py_ssize_t value_at = parser->w - parser->out;
        if (sort_key) {
            if (name_len == 10 && memcmp(start + 1, "event_time", 10) == 0) *has_event_time = 1;
            if (name_len == 8 && memcmp(start + 1, "event_id", 8) == 0) *has_event_id = 1;
        }
        if (flatten_value(parser) < 0) return -1;
        if (sort_key && name_len == 19 && memcmp(start + 1, "event_time_event_id", 19) == 0) {
            /* Remember an S value (emitted as a quoted string); other types add nothing. */
            const char *value = parser->out + value_at;
            Py_ssize_t value_len = (parser->w - parser->out) - value_at;
            if (value_len >= 2 && value[0] == '"') {
                if (memchr(value, '\\', (size_t)value_len)) FAIL(parser);
                *sort_key = value_at;
                *sort_key_len = value_len;
            }
        }
        int more = after_member(parser, '}');
        if (more < 0) return -1;
        if (more) continue;
        EMIT_CHAR(parser, '}');
        return 0;
    }
}

/* An SS or BS (binary: each member canonical base64): non-empty, members distinct, sorted. */
static int flatten_string_set(Parser *parser, int binary) {
    Token small[16];
    Token *tokens = small;
    Py_ssize_t count = 0, capacity = 16;
    int result = -1;
    if (expect(parser, '[') < 0) return -1;
    skip_ws(parser);
    if (parser->p < parser->end && *parser->p == ']') FAIL(parser); /* sets are never empty */
    for (;;) {
        const unsigned char *start, *stop;
        int escaped;
        if (scan_string(parser, &start, &stop, &escaped) < 0) goto done;
        if (escaped || (binary && !is_canonical_base64(start + 1, stop - start - 2))) {
            parser->failed = 1;
            goto done;
        }
        if (count == capacity) {
            Token *grown = (Token *)PyMem_RawMalloc(sizeof(Token) * (size_t)capacity * 2);
            if (!grown) {
                parser->failed = 2;
                goto done;
            }
            memcpy(grown, tokens, sizeof(Token) * (size_t)count);
            if (tokens != small) PyMem_RawFree(tokens);
            tokens = grown;
            capacity *= 2;
        }
        tokens[count].start = start;
        tokens[count].len = stop - start;
        count++;
        int more = after_member(parser, ']');
        if (more < 0) goto done;
        if (!more) break;
    }
    qsort(tokens, (size_t)count, sizeof(Token), compare_tokens);
    for (Py_ssize_t i = 1; i < count; i++) {
        if (compare_tokens(&tokens[i - 1], &tokens[i]) == 0) { /* a member twice: unescaped, so the same string */
            parser->failed = 1;
            goto done;
        }
    }
    {
        char *w = parser->w;
        *w++ = '[';
        for (Py_ssize_t i = 0; i < count; i++) {
            if (i) *w++ = ',';
            memcpy(w, tokens[i].start, (size_t)tokens[i].len);
            w += tokens[i].len;
        }
        *w++ = ']';
        parser->w = w;
    }
    result = 0;
done:
    if (tokens != small) PyMem_RawFree(tokens);
    return result;
}

static int literal(Parser *parser, const char *word, Py_ssize_t n) {
    skip_ws(parser);
    if (parser->end - parser->p < n || memcmp(parser->p, word, (size_t)n) != 0) FAIL(parser);
    parser->p += n;
    return 0;
}

/* One typed value {"T": payload}, emitted as its plain JSON value. */
static int flatten_value(Parser *parser) {
    const unsigned char *start, *stop;
    int escaped;
    if (++parser->depth > MAX_DEPTH) FAIL(parser);
    if (expect(parser, '{') < 0) return -1;
    skip_ws(parser);
    /* Type tags are 1-4 capital letters: read them without the general string scanner. */
    const unsigned char *tag = parser->p + 1;
    Py_ssize_t tag_len = 0;
    if (parser->end - parser->p < 7 || parser->p[0] != '"') FAIL(parser);
    while (tag_len < 5 && tag[tag_len] >= 'A' && tag[tag_len] <= 'Z') tag_len++;
    if (tag_len == 0 || tag_len > 4 || tag[tag_len] != '"') FAIL(parser);
    parser->p = tag + tag_len + 1;
    if (expect(parser, ':') < 0) return -1;
    if (tag_len == 1 && (tag[0] == 'S' || tag[0] == 'B')) {
        if (scan_string(parser, &start, &stop, &escaped) < 0) return -1;
        if (tag[0] == 'B' && (escaped || !is_canonical_base64(start + 1, stop - start - 2))) FAIL(parser);
        EMIT(parser, start, stop - start);
    } else if (tag_len == 1 && tag[0] == 'N') {
        if (scan_string(parser, &start, &stop, &escaped) < 0) return -1;
        if (escaped || !is_json_number(start + 1, stop - 1) || !is_dynamodb_number(start + 1, stop - 1)) FAIL(parser);
        EMIT(parser, start + 1, stop - start - 2);
    } else if (tag_len == 1 && tag[0] == 'M') {
        if (flatten_members(parser, NULL, NULL, NULL, NULL) < 0) return -1;
    } else if (tag_len == 1 && tag[0] == 'L') {
        if (expect(parser, '[') < 0) return -1;
        EMIT_CHAR(parser, '[');
        skip_ws(parser);
        if (parser->p < parser->end && *parser->p == ']') {
            parser->p++;
        } else {
            for (int first = 1;; first = 0) {
                if (!first) EMIT_CHAR(parser, ',');
                if (flatten_value(parser) < 0) return -1;
                int more = after_member(parser, ']');
                if (more < 0) return -1;
                if (!more) break;
            }
        }
        EMIT_CHAR(parser, ']');
    } else if (tag_len == 4 && memcmp(tag, "BOOL", 4) == 0) {
        skip_ws(parser);
        if (parser->p < parser->end && *parser->p == 't') {
            if (literal(parser, "true", 4) < 0) return -1;
            EMIT_LITERAL(parser, "true");
        } else {
            if (literal(parser, "false", 5) < 0) return -1;
            EMIT_LITERAL(parser, "false");
        }
    } else if (tag_len == 4 && memcmp(tag, "NULL", 4) == 0) {
        if (literal(parser, "true", 4) < 0) return -1;
        EMIT_LITERAL(parser, "null");
    } else if (tag_len == 2 && (memcmp(tag, "SS", 2) == 0 || memcmp(tag, "BS", 2) == 0)) {
        if (flatten_string_set(parser, tag[0] == 'B') < 0) return -1;
    } else {
        FAIL(parser); /* NS (numeric order) and unknown tags: the Python path decides */
    }
    if (expect(parser, '}') < 0) return -1;
    parser->depth--;
    return 0;
}

/* One line {"Item": {...}} into parser->out; on failure the caller rolls the output back. */
static int flatten_one(Parser *parser) {
    const unsigned char *start, *stop;
    int escaped, has_event_time = 0, has_event_id = 0;
    Py_ssize_t sort_key_offset = -1;
    Py_ssize_t sort_key_len = 0;
    if (expect(parser, '{') < 0) return -1;
    if (scan_string(parser, &start, &stop, &escaped) < 0) return -1;
    if (escaped || stop - start != 6 || memcmp(start, "\"Item\"", 6) != 0) FAIL(parser);
    if (expect(parser, ':') < 0) return -1;
    skip_ws(parser);
    if (flatten_members(parser, &sort_key_offset, &sort_key_len, &has_event_time, &has_event_id) < 0) return -1;
    if (expect(parser, '}') < 0) return -1;
    skip_ws(parser);
    if (parser->p != parser->end) FAIL(parser);
    if (sort_key_offset >= 0 && (!has_event_time || !has_event_id)) {
        /* The sort key's value is already in the output: split it from there. */
        const char *inner = parser->out + sort_key_offset + 1;
        Py_ssize_t inner_len = sort_key_len - 2;
        const char *hash = memchr(inner, '#', (size_t)inner_len);
        if (hash) {
            Py_ssize_t time_len = hash - inner;
            Py_ssize_t id_len = inner_len - time_len - 1;
            char *w = parser->w - 1; /* reopen the object: drop its '}' */
            int empty = w[-1] == '{';
            if (!has_event_time) {
                if (!empty) *w++ = ',';
                memcpy(w, "\"event_time\":\"", 14);
                w += 14;
                memmove(w, inner, (size_t)time_len);
                w += time_len;
                *w++ = '"';
                empty = 0;
            }
            if (!has_event_id) {
                if (!empty) *w++ = ',';
                memcpy(w, "\"event_id\":\"", 12);
                w += 12;
                memmove(w, hash + 1, (size_t)id_len);
                w += id_len;
                *w++ = '"';
            }
            *w++ = '}';
            parser->w = w;
        }
    }
    EMIT_CHAR(parser, '\n');
    return 0;
}

static PyObject *flatten_into(PyObject *self, PyObject *args) {
    Py_buffer view, target;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "y*nnw*", &view, &start, &stop, &target)) return NULL;
    if (start < 0 || stop > view.len || start > stop) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&target);
        PyErr_SetString(PyExc_ValueError, "start/stop out of range");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    char *out = (char *)target.buf;
    Py_ssize_t room = target.len;
    Py_ssize_t pos = start, items = 0, written = 0;
    int status = 0; /* 0: all complete lines done; 1: a line for the Python path; 2: no room */
    Py_BEGIN_ALLOW_THREADS
    while (pos < stop) {
        const unsigned char *line = data + pos;
        const unsigned char *newline = memchr(line, '\n', (size_t)(stop - pos));
        if (!newline) break; /* a partial line: the caller brings the rest */
        Py_ssize_t line_len = newline - line;
        if (room - written < 3 * line_len + 64) {
            status = 2;
            break;
        }
        Parser parser = {line, newline, data + view.len, out + written, out + written, 0, 0};
        if (flatten_one(&parser) < 0) {
            status = 1;
            break;
        }
        written = parser.w - out;
        items++;
        pos = (newline - data) + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyBuffer_Release(&target);
    return Py_BuildValue("(nnni)", written, pos, items, status);
}

static PyMethodDef methods[] = {
    {"flatten_into", flatten_into, METH_VARARGS,
     "flatten_into(data, start, stop, out) -> (written, end, items, status): flatten the complete lines "
     "of data[start:stop] into the writable buffer out. status 0: done (end is after the last complete "
     "line); 1: the line at end is for the Python path; 2: out has no room for the line at end."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "C fast path of jit_audit.flatten.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_tables();
    return PyModule_Create(&module);
}
