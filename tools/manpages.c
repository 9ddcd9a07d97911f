/* Writes the man pages of a C header from its comments, so that they say
 * what the header says:
 *
 *   manpages HEADER OUTDIR VERSION
 *
 * One page (OUTDIR/NAME.3) per function and per type the header declares,
 * found by reading its declarations (never from a list), and libmio.3 for
 * the whole.  The header's conventions: a "---- Title ----" banner comment
 * opens a section (the rest of the banner is the section's text); a comment
 * on lines of its own documents what follows it; a comment after code on
 * the same line documents that code; a declaration without a comment right
 * after one that has one shares it.  Pages are plain man(7) and need no
 * other tool; a page's content depends on the header alone.
 *
 * Built for the host and run at build time (CMakeLists.txt); standard C. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings ---------------------------------------------------------- */

typedef struct str {
    char *s;
    size_t n, cap;
} str;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "manpages: out of memory\n");
        exit(1);
    }
    return p;
}

static void sadd(str *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sputs(str *b, const char *s) { sadd(b, s, strlen(s)); }
static void sputc(str *b, char c) { sadd(b, &c, 1); }

static void sappendf(str *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof tmp) n = (int)sizeof tmp - 1;
    sadd(b, tmp, (size_t)n);
}

static char *sdup(const char *s) { str b = {0}; sputs(&b, s ? s : ""); return b.s; }
static char *sndup(const char *s, size_t n) { str b = {0}; sadd(&b, s, n); if (!b.s) return sdup(""); return b.s; }

static bool is_id0(int c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_id(int c) { return isalnum((unsigned char)c) || c == '_'; }

/* Collapses runs of white space into one space and trims both ends. */
static char *collapse(const char *s)
{
    str b = {0};
    bool space = false;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            space = b.n > 0;
        } else {
            if (space) sputc(&b, ' ');
            space = false;
            sputc(&b, *s);
        }
    }
    return b.s ? b.s : sdup("");
}

/* ---- the header's model ------------------------------------------------ */

enum { FUNC, TYPE };

typedef struct decl {
    int kind;
    char *name;
    char *text;         /* the declaration, comments removed, one line */
    char *raw;          /* as written (struct bodies keep their layout) */
    char *doc;          /* comment bodies, paragraphs apart by empty lines */
    char *brief;        /* the comment right above it: the summary's source */
    char *cond;         /* preprocessor condition, "" when none */
    int section;
    int line, end_line;
    struct decl *other; /* the same name declared again (another #if branch) */
} decl;

typedef struct macro {
    char *name, *value, *cond;
    char *doc;          /* the comment above it (a run of constants shares it) */
    char *trail;        /* the comment after it */
    int section, line;
    bool group_start;   /* not right below another macro of the section */
} macro;

typedef struct section {
    char *title, *text;
} section;

static decl **decls;          /* each on its own: pointers to them stay valid */
static size_t ndecls;
static macro **macros;
static size_t nmacros;
static section *sections;
static size_t nsections;
static char *file_doc;  /* the first comment: the whole header's */
static const char *header_name = "mio.h";
static const char *version = "";

static decl *find_decl(const char *name, size_t len)
{
    for (size_t i = 0; i < ndecls; i++)
        if (strlen(decls[i]->name) == len && memcmp(decls[i]->name, name, len) == 0)
            return decls[i];
    return NULL;
}

/* ---- reading the header ------------------------------------------------ */

/* A comment's text without its delimiters and the leading " * " of each
 * line, indentation beyond that kept; no empty first or last line. */
static char *comment_body(const char *p, size_t n)
{
    bool line_comment = n >= 2 && p[1] == '/';
    const char *end = p + n - (line_comment ? 0 : 2);
    p += 2;
    while (p < end && *p == '*') p++;           /* also a doc comment's second star */
    str b = {0};
    bool first = true;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        if (first) {
            if (q < le && *q == ' ') q++;
        } else {
            while (q < le && (*q == ' ' || *q == '\t')) q++;
            if (q < le && *q == '*') {
                q++;
                if (q < le && *q == ' ') q++;
            }
        }
        const char *r = le;
        while (r > q && isspace((unsigned char)r[-1])) r--;
        sadd(&b, q, (size_t)(r - q));
        sputc(&b, '\n');
        first = false;
        if (!nl) break;
        p = nl + 1;
    }
    /* trim empty lines at both ends */
    char *s = b.s ? b.s : sdup("");
    while (*s == '\n') memmove(s, s + 1, strlen(s));
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' ')) s[--len] = '\0';
    return s;
}

static void append_doc(char **doc, const char *more)
{
    if (!more || !*more) return;
    str b = {0};
    if (*doc && **doc) {
        sputs(&b, *doc);
        sputs(&b, "\n\n");
    }
    sputs(&b, more);
    *doc = b.s;
}

#define MAX_COND 32
typedef struct cond {
    char *text;         /* "" for the include guard */
    bool skip;          /* C++ only: not part of the C declarations */
} cond;

static cond conds[MAX_COND];
static int nconds;

static char *cond_now(void)
{
    str b = {0};
    for (int i = 0; i < nconds; i++) {
        if (!*conds[i].text) continue;
        if (b.n) sputs(&b, " && ");
        sputs(&b, conds[i].text);
    }
    return b.s ? b.s : sdup("");
}

static bool cond_skip(void)
{
    for (int i = 0; i < nconds; i++)
        if (conds[i].skip) return true;
    return false;
}

static char *negate(const char *c)
{
    str b = {0};
    if (strncmp(c, "!defined(", 9) == 0) sputs(&b, c + 1);
    else if (strncmp(c, "defined(", 8) == 0 && !strchr(c + 8, ' ')) { sputc(&b, '!'); sputs(&b, c); }
    else { sputs(&b, "!("); sputs(&b, c); sputc(&b, ')'); }
    return b.s;
}

static int cur_section = -1;
static str pending;             /* own-line comments not yet claimed */
static bool pending_any;
static char *pending_last;      /* the last of them, right above the declaration */
static decl *last_decl;         /* for a trailing comment or a shared doc */
static macro *last_macro;
static int last_code_line;      /* the line the last declaration or constant ended on */

static void take_pending(char **doc)
{
    if (pending_any) append_doc(doc, pending.s);
    pending.n = 0;
    if (pending.s) pending.s[0] = '\0';
    pending_any = false;
}

/* Comments that document nothing we make a page of. */
static void drop_pending(void)
{
    char *none = NULL;
    take_pending(&none);
    free(none);
}

static void directive(const char *text, int line)
{
    char *t = collapse(text + 1);               /* past '#' */
    char word[32] = "";
    size_t k = 0;
    while (is_id(t[k]) && k + 1 < sizeof word) { word[k] = t[k]; k++; }
    word[k] = '\0';
    const char *rest = t + k;
    while (*rest == ' ') rest++;

    if (!strcmp(word, "ifdef") || !strcmp(word, "ifndef") || !strcmp(word, "if")) {
        if (nconds == MAX_COND) { fprintf(stderr, "manpages: #if nested too deep\n"); exit(1); }
        str c = {0};
        if (!strcmp(word, "if")) sputs(&c, rest);
        else sappendf(&c, "%sdefined(%s)", word[2] == 'n' ? "!" : "", rest);
        conds[nconds].text = c.s ? c.s : sdup("");
        conds[nconds].skip = strstr(rest, "__cplusplus") && word[2] != 'n';
        nconds++;
    } else if (!strcmp(word, "elif") && nconds) {
        conds[nconds - 1].text = sdup(rest);
        conds[nconds - 1].skip = false;
    } else if (!strcmp(word, "else") && nconds) {
        if (*conds[nconds - 1].text) conds[nconds - 1].text = negate(conds[nconds - 1].text);
        conds[nconds - 1].skip = false;
    } else if (!strcmp(word, "endif") && nconds) {
        nconds--;
    } else if (!strcmp(word, "define")) {
        size_t n = 0;
        while (is_id(rest[n])) n++;
        const char *value = rest + n;
        if (*value == '(') {                    /* a macro with parameters */
            const char *e = strchr(value, ')');
            value = e ? e + 1 : value + strlen(value);
        }
        while (*value == ' ') value++;
        /* "#ifndef X" then "#define X": the include guard */
        if (!*value && nconds && !strncmp(conds[nconds - 1].text, "!defined(", 9) &&
            strlen(conds[nconds - 1].text) == 10 + n &&
            !strncmp(conds[nconds - 1].text + 9, rest, n)) {
            conds[nconds - 1].text = sdup("");
            return;
        }
        if (cur_section < 0 || cond_skip()) {
            drop_pending();
            return;
        }
        macros = xrealloc(macros, (nmacros + 1) * sizeof *macros);
        macro *m = macros[nmacros++] = xrealloc(NULL, sizeof *m);
        memset(m, 0, sizeof *m);
        m->name = sndup(rest, n);
        m->value = sndup(rest + n, (size_t)(value - rest - n) + strlen(value));
        {
            char *v = collapse(m->value);
            m->value = v;
        }
        m->cond = cond_now();
        m->section = cur_section;
        m->line = line;
        m->group_start = pending_any || !last_macro || last_macro->line != line - 1 ||
                         last_macro->section != cur_section;
        take_pending(&m->doc);
        last_macro = m;
        last_decl = NULL;
        last_code_line = line;
    }
    free(t);
}

/* The last identifier of s before position end. */
static char *last_ident(const char *s, const char *end)
{
    const char *e = end;
    while (e > s && !is_id(e[-1])) e--;
    const char *b = e;
    while (b > s && is_id(b[-1])) b--;
    return sndup(b, (size_t)(e - b));
}

static void statement(const char *raw, size_t n, int line, int end_line)
{
    /* the text without comments */
    str c = {0};
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '/' && i + 1 < n && raw[i + 1] == '*') {
            const char *e = strstr(raw + i + 2, "*/");
            i = e ? (size_t)(e - raw) + 1 : n;
            sputc(&c, ' ');
        } else if (raw[i] == '/' && i + 1 < n && raw[i + 1] == '/') {
            while (i < n && raw[i] != '\n') i++;
            sputc(&c, ' ');
        } else {
            sputc(&c, raw[i]);
        }
    }
    char *text = collapse(c.s ? c.s : "");
    free(c.s);
    /* drop the export macro and storage words */
    str t = {0};
    for (const char *p = text; *p;) {
        if (is_id0(*p) && (p == text || !is_id(p[-1]))) {
            const char *q = p;
            while (is_id(*q)) q++;
            size_t len = (size_t)(q - p);
            bool drop = (len == 7 && !memcmp(p, "MIO_API", 7)) || (len == 6 && !memcmp(p, "extern", 6));
            if (drop) {
                p = q;
                while (*p == ' ') p++;
                continue;
            }
            sadd(&t, p, len);
            p = q;
        } else {
            sputc(&t, *p++);
        }
    }
    free(text);
    text = t.s ? t.s : sdup("");

    int kind;
    char *name = NULL;
    const char *paren = strchr(text, '(');
    const char *brace = strchr(text, '{');
    if (!strncmp(text, "typedef ", 8)) {
        kind = TYPE;
        const char *fp = strstr(text, "(*");
        if (brace) {
            name = last_ident(text, text + strlen(text));   /* after the body */
        } else if (fp) {
            const char *q = fp + 2;
            while (*q == ' ') q++;
            const char *e = q;
            while (is_id(*e)) e++;
            name = sndup(q, (size_t)(e - q));
        } else {
            const char *e = strchr(text, '[');
            name = last_ident(text, e ? e : text + strlen(text));
        }
    } else if (brace && (!paren || brace < paren) &&
               (!strncmp(text, "struct ", 7) || !strncmp(text, "union ", 6) || !strncmp(text, "enum ", 5))) {
        kind = TYPE;
        const char *p = strchr(text, ' ') + 1;
        const char *e = p;
        while (is_id(*e)) e++;
        name = sndup(p, (size_t)(e - p));
    } else if (paren) {
        kind = FUNC;
        name = last_ident(text, paren);
    } else {
        free(text);
        drop_pending();
        return;                                 /* a variable: not documented here */
    }
    if (!*name || cur_section < 0) {
        free(text);
        drop_pending();
        return;
    }

    decls = xrealloc(decls, (ndecls + 1) * sizeof *decls);
    decl *d = decls[ndecls] = xrealloc(NULL, sizeof *d);
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->name = name;
    d->text = text;
    d->raw = sndup(raw, n);
    d->cond = cond_now();
    d->section = cur_section;
    d->line = line;
    d->end_line = end_line;
    if (pending_any) {
        d->brief = pending_last;
        take_pending(&d->doc);
    } else if (last_decl && last_decl->end_line == line - 1 && last_decl->doc) {
        d->doc = last_decl->doc;                /* shares the one above */
        d->brief = last_decl->brief;
    }
    /* a second declaration of the same name (another #if branch) */
    for (size_t i = 0; i < ndecls; i++) {
        if (!strcmp(decls[i]->name, name) && decls[i]->kind == kind) {
            decl *o = decls[i];
            while (o->other) o = o->other;
            decl *copy = xrealloc(NULL, sizeof *copy);
            *copy = *d;
            o->other = copy;
            if (!decls[i]->doc) decls[i]->doc = d->doc;
            last_decl = copy;
            last_macro = NULL;
            last_code_line = end_line;
            return;
        }
    }
    ndecls++;
    last_decl = d;
    last_macro = NULL;
    last_code_line = end_line;
}

static void own_comment(char *body)
{
    if (!strncmp(body, "----", 4)) {            /* a section banner */
        char *nl = strchr(body, '\n');
        char *title = sndup(body, nl ? (size_t)(nl - body) : strlen(body));
        char *p = title;
        while (*p == '-' || *p == ' ') p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == '-' || e[-1] == ' ')) e--;
        sections = xrealloc(sections, (nsections + 1) * sizeof *sections);
        sections[nsections].title = sndup(p, (size_t)(e - p));
        sections[nsections].text = sdup(nl ? nl + 1 : "");
        char *t = sections[nsections].text;     /* drop leading empty lines */
        while (*t == '\n') memmove(t, t + 1, strlen(t));
        cur_section = (int)nsections++;
        drop_pending();
        free(title);
        last_decl = NULL;
        last_macro = NULL;
        return;
    }
    if (!file_doc) {
        file_doc = body;
        return;
    }
    if (pending_any) sputs(&pending, "\n\n");
    sputs(&pending, body);
    pending_any = true;
    pending_last = body;
}

static void parse(const char *src)
{
    size_t i = 0, n = strlen(src);
    int line = 1;
    bool line_code = false;     /* code on this line so far */
    bool in_stmt = false;
    size_t stmt_start = 0;
    int stmt_line = 0, depth = 0;

    while (i < n) {
        char ch = src[i];
        if (ch == '\n') {
            line++;
            line_code = false;
            i++;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f') {
            i++;
            continue;
        }
        if ((ch == '/' && src[i + 1] == '*') || (ch == '/' && src[i + 1] == '/')) {
            size_t end;
            if (src[i + 1] == '*') {
                const char *e = strstr(src + i + 2, "*/");
                end = e ? (size_t)(e - src) + 2 : n;
            } else {
                end = i;
                while (end < n && src[end] != '\n') end++;
            }
            int start_line = line;
            for (size_t k = i; k < end; k++)
                if (src[k] == '\n') line++;
            if (!in_stmt) {
                char *body = comment_body(src + i, end - i);
                if (line_code) {        /* after code: a declaration's or a constant's */
                    if (last_code_line != start_line) free(body);   /* "#endif" and the like */
                    else if (last_decl) append_doc(&last_decl->doc, body);
                    else if (last_macro) append_doc(&last_macro->trail, body);
                } else {
                    own_comment(body);
                }
            }
            if (line != start_line) line_code = false;
            i = end;
            continue;
        }
        if (ch == '#' && !line_code && !in_stmt) {
            str d = {0};
            size_t k = i;
            while (k < n && src[k] != '\n') {
                if (src[k] == '\\' && src[k + 1] == '\n') {
                    sputc(&d, ' ');
                    k += 2;
                    line++;
                    continue;
                }
                if (src[k] == '/' && (src[k + 1] == '*' || src[k + 1] == '/')) break;
                sputc(&d, src[k++]);
            }
            directive(d.s, line);
            free(d.s);
            line_code = true;
            i = k;
            continue;
        }
        /* code */
        if (cond_skip()) {                      /* extern "C" { ... } */
            i++;
            continue;
        }
        if (!in_stmt) {
            in_stmt = true;
            stmt_start = i;
            stmt_line = line;
            depth = 0;
        }
        line_code = true;
        if (ch == '"' || ch == '\'') {
            size_t k = i + 1;
            while (k < n && src[k] != ch && src[k] != '\n') k += src[k] == '\\' ? 2 : 1;
            i = k + 1;
            continue;
        }
        if (ch == '(' || ch == '{' || ch == '[') depth++;
        if (ch == ')' || ch == '}' || ch == ']') depth--;
        i++;
        if (ch == ';' && depth <= 0) {
            in_stmt = false;
            statement(src + stmt_start, i - stmt_start, stmt_line, line);
            last_code_line = line;
        }
    }
}

/* ---- roff output ------------------------------------------------------- */

/* Text for a man(7) text line: backslashes and minus signs escaped,
 * `code` in italics, known functions and types in bold. */
static void put_inline(FILE *f, const char *s, size_t n, bool highlight)
{
    bool line_start = true;
    bool italic = false;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (line_start && (c == '.' || c == '\'')) fputs("\\&", f);
        line_start = false;
        if (highlight && is_id0(c) && (i == 0 || !is_id(s[i - 1]))) {
            size_t k = i;
            while (k < n && is_id(s[k])) k++;
            decl *d = find_decl(s + i, k - i);
            if (d && !italic) {
                fprintf(f, "\\fB%.*s\\fR", (int)(k - i), s + i);
            } else {
                for (size_t j = i; j < k; j++) fputc(s[j], f);
            }
            i = k;
            continue;
        }
        if (c == '`' && highlight) {
            italic = !italic;
            fputs(italic ? "\\fI" : "\\fR", f);
        } else if (c == '\\') {
            fputs("\\e", f);
        } else if (c == '-') {
            fputs("\\-", f);
        } else if (c == '\n') {
            fputc('\n', f);
            line_start = true;
        } else {
            fputc(c, f);
        }
        i++;
    }
    if (italic) fputs("\\fR", f);
}

static void put_line(FILE *f, const char *s)
{
    put_inline(f, s, strlen(s), true);
    fputc('\n', f);
}

/* A comment's text as blocks: paragraphs, bullets ("- ..."), headings
 * (a line underlined with dashes) and indented text kept as it is. */
enum { PARA, BULLET, LITERAL, HEADING };

typedef struct block {
    int type;
    char *text;
} block;

static int indent_of(const char *l) { int k = 0; while (l[k] == ' ') k++; return k; }

static size_t split_lines(const char *doc, char ***out)
{
    size_t n = 0;
    char **v = NULL;
    const char *p = doc;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        v = xrealloc(v, (n + 1) * sizeof *v);
        v[n++] = sndup(p, len);
        p = nl ? nl + 1 : NULL;
    }
    *out = v;
    return n;
}

/* Joins a continuation line, a sentence's end keeping two spaces. */
static void join(str *b, const char *l)
{
    while (*l == ' ') l++;
    if (b->n) sputs(b, b->s[b->n - 1] == '.' ? "  " : " ");
    sputs(b, l);
}

static size_t to_blocks(const char *doc, block **out)
{
    char **l;
    size_t n = split_lines(doc, &l), nb = 0;
    block *b = NULL;
    for (size_t i = 0; i < n;) {
        str t = {0};
        int type;
        if (!*l[i]) {
            i++;
            continue;
        }
        bool dashes = i + 1 < n && l[i + 1][0] == '-' && strspn(l[i + 1], "-") == strlen(l[i + 1]) &&
                      strlen(l[i + 1]) >= 3;
        if (dashes && indent_of(l[i]) == 0) {
            type = HEADING;
            sputs(&t, l[i]);
            i += 2;
        } else if (!strncmp(l[i], "- ", 2)) {
            type = BULLET;
            join(&t, l[i] + 2);
            for (i++; i < n && *l[i] && indent_of(l[i]) >= 2; i++) join(&t, l[i]);
        } else if (indent_of(l[i]) > 0) {
            type = LITERAL;
            int min = 1000;
            size_t j;
            for (j = i; j < n && *l[j] && indent_of(l[j]) > 0; j++)
                if (indent_of(l[j]) < min) min = indent_of(l[j]);
            for (; i < j; i++) {
                if (t.n) sputc(&t, '\n');
                sputs(&t, l[i] + min);
            }
        } else {
            type = PARA;
            join(&t, l[i]);
            size_t len = strlen(l[i]);
            bool colon = len && l[i][len - 1] == ':';
            i++;
            if (i < n && *l[i] && indent_of(l[i]) > 0 && !colon) {      /* hanging */
                for (; i < n && *l[i] && indent_of(l[i]) > 0; i++) join(&t, l[i]);
            } else {
                for (; i < n && *l[i] && indent_of(l[i]) == 0 && strncmp(l[i], "- ", 2); i++) {
                    if (i + 1 < n && l[i + 1][0] == '-' && strspn(l[i + 1], "-") == strlen(l[i + 1]) &&
                        strlen(l[i + 1]) >= 3)
                        break;
                    join(&t, l[i]);
                }
            }
        }
        b = xrealloc(b, (nb + 1) * sizeof *b);
        b[nb].type = type;
        b[nb].text = t.s ? t.s : sdup("");
        nb++;
    }
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
    *out = b;
    return nb;
}

/* Sentences: ends at ".  ", "?  " or "!  " outside parentheses. */
static size_t sentences(const char *s, char ***out)
{
    size_t n = 0;
    char **v = NULL;
    int depth = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '(') depth++;
        if (*p == ')' && depth > 0) depth--;
        bool end = !*p || (depth == 0 && (p[0] == '.' || p[0] == '?' || p[0] == '!') && p[1] == ' ' &&
                           p[2] == ' ');
        if (end) {
            size_t len = (size_t)(p - start) + (*p ? 1 : 0);
            while (len && start[len - 1] == ' ') len--;
            if (len) {
                v = xrealloc(v, (n + 1) * sizeof *v);
                v[n++] = sndup(start, len);
            }
            if (!*p) break;
            p += 2;
            start = p + 1;
        }
    }
    *out = v;
    return n;
}

static bool has_word(const char *s, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = s; (p = strstr(p, w)); p++) {
        bool left = p == s || !is_id(p[-1]);
        bool right = !is_id(p[wl]);
        if (left && right) return true;
    }
    return false;
}

static bool names_error(const char *s)
{
    for (const char *p = s; (p = strstr(p, "MIO_E")); p++)
        if ((p == s || !is_id(p[-1])) && isupper((unsigned char)p[5])) return true;
    return false;
}

/* A sentence about what comes back: it starts so, or a clause of it does. */
static bool says_return(const char *s)
{
    static const char *const starts[] = {"Returns ", "Return ", "true ", "false ", "NULL "};
    static const char *const clauses[] = {"; returns ", ": returns ", ", returns ", " and returns "};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++)
        if (!strncmp(s, starts[i], strlen(starts[i]))) return true;
    for (size_t i = 0; i < sizeof clauses / sizeof *clauses; i++)
        if (strstr(s, clauses[i])) return true;
    return false;
}

static void put_blocks(FILE *f, block *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        if (!*b[i].text) continue;
        switch (b[i].type) {
        case HEADING:
            fputs(".SS ", f);
            put_inline(f, b[i].text, strlen(b[i].text), false);
            fputc('\n', f);
            break;
        case BULLET:
        case PARA: {
            fputs(b[i].type == BULLET ? ".IP \\(bu 2\n" : ".PP\n", f);
            char **s;
            size_t ns = sentences(b[i].text, &s);
            for (size_t k = 0; k < ns; k++) {
                put_line(f, s[k]);
                free(s[k]);
            }
            free(s);
            break;
        }
        case LITERAL:
            fputs(".PP\n.nf\n", f);
            put_inline(f, b[i].text, strlen(b[i].text), true);
            fputs("\n.fi\n", f);
            break;
        }
    }
}

static void put_text(FILE *f, const char *doc)
{
    block *b;
    size_t nb = to_blocks(doc, &b);
    put_blocks(f, b, nb);
    for (size_t i = 0; i < nb; i++) free(b[i].text);
    free(b);
}

/* The NAME line's summary: the first sentence of the comment, up to its
 * first colon or semicolon. */
static char *summary(const decl *d)
{
    const char *src = d->brief ? d->brief : d->doc;
    if (!src || !*src) return sdup(sections[d->section].title);
    block *b;
    size_t nb = to_blocks(src, &b);
    char *first = NULL;
    for (size_t i = 0; i < nb && !first; i++) {
        if (b[i].type == PARA || b[i].type == BULLET) {
            char **s;
            size_t ns = sentences(b[i].text, &s);
            if (ns) first = s[0];
            for (size_t k = 1; k < ns; k++) free(s[k]);
            free(s);
        }
    }
    for (size_t i = 0; i < nb; i++) free(b[i].text);
    free(b);
    if (!first) return sdup(sections[d->section].title);
    int depth = 0;
    char *cut = NULL, *early = NULL;
    for (char *p = first; *p; p++) {
        if (*p == '(') depth++;
        if (*p == ')' && depth > 0) depth--;
        if (depth == 0 && *p == ';') {
            *p = '\0';
            break;
        }
        /* too long: end it at a clause, outside parentheses */
        bool clause = depth == 0 && ((p[0] == ',' && p[1] == ' ') || (p[0] == ' ' && p[1] == '('));
        if (clause && p - first >= 30 && p - first < 90) cut = p;
        if (clause && p - first >= 10 && p - first < 90 && !early) early = p;
    }
    size_t len = strlen(first);
    while (len && (first[len - 1] == '.' || first[len - 1] == ' ')) first[--len] = '\0';
    if (len > 90 && (cut || early)) {
        *(cut ? cut : early) = '\0';
    } else if (len > 90) {
        char *sp = first + 87;
        while (sp > first && *sp != ' ') sp--;
        strcpy(sp, "...");
    }
    if (isupper((unsigned char)first[0]) && (islower((unsigned char)first[1]) || first[1] == ' '))
        first[0] = (char)tolower(first[0]);
    /* the NAME line is plain text */
    str o = {0};
    for (char *p = first; *p; p++)
        if (*p != '`') sputc(&o, *p);
    free(first);
    return o.s ? o.s : sdup("");
}

static void put_th(FILE *f, const char *name)
{
    fputs(".TH \"", f);
    for (const char *p = name; *p; p++) fputc(toupper((unsigned char)*p), f);
    fprintf(f, "\" 3 \"\" \"libmio %s\" \"libmio Manual\"\n", version);
    fputs(".nh\n.ad l\n", f);         /* identifiers stay whole */
}

static void put_name(FILE *f, const char *name, const char *what)
{
    fputs(".SH NAME\n", f);
    put_inline(f, name, strlen(name), false);
    fputs(" \\- ", f);
    put_inline(f, what, strlen(what), false);
    fputc('\n', f);
}

/* The #if lines around the declarations of one name, one per branch. */
static void put_cond_open(FILE *f, const char *c, const char *prev)
{
    if (prev && *prev) {
        char *neg = negate(prev);
        bool complement = !strcmp(neg, c);
        free(neg);
        if (complement) {
            fputs("#else\n", f);
            return;
        }
        fputs("#endif\n", f);
    }
    if (!*c) return;
    if (!strncmp(c, "defined(", 8) && !strchr(c, ' '))
        fprintf(f, "#ifdef %.*s\n", (int)(strlen(c) - 9), c + 8);
    else if (!strncmp(c, "!defined(", 9) && !strchr(c, ' '))
        fprintf(f, "#ifndef %.*s\n", (int)(strlen(c) - 10), c + 9);
    else
        fprintf(f, "#if %s\n", c);
}

/* A prototype in bold with its parameter names in italics, wrapped after a
 * comma with the next parameter under the first. */
static void put_prototype(FILE *f, const char *text)
{
    const char *open = strchr(text, '(');
    const char *close = text + strlen(text);
    while (close > open && *close != ')') close--;
    size_t col = (size_t)(open - text) + 1;
    str o = {0};
    sputs(&o, "\\fB");
    for (const char *p = text; p <= open; p++) {
        if (*p == '-') sputs(&o, "\\-"); else if (*p == '\\') sputs(&o, "\\e"); else sputc(&o, *p);
    }
    size_t width = col;
    /* parameters, split at commas outside parentheses */
    const char *p = open + 1;
    bool first = true;
    while (p < close) {
        const char *q = p;
        int depth = 0;
        while (q < close && !(depth == 0 && *q == ',')) {
            if (*q == '(') depth++;
            if (*q == ')') depth--;
            q++;
        }
        while (*p == ' ') p++;
        /* the parameter's name: after "(*" for a function pointer, else its last identifier */
        const char *nb = NULL, *ne = NULL;
        const char *fp = NULL;
        for (const char *r = p; r + 1 < q; r++)
            if (r[0] == '(' && r[1] == '*') { fp = r + 2; break; }
        if (fp) {
            while (*fp == ' ') fp++;
            nb = fp;
            ne = fp;
            while (is_id(*ne)) ne++;
        } else {
            const char *e = q;
            const char *br = memchr(p, '[', (size_t)(q - p));
            if (br) e = br;
            while (e > p && !is_id(e[-1])) e--;
            const char *s = e;
            while (s > p && is_id(s[-1])) s--;
            /* "void" alone, or a type without a name */
            bool only = true;
            for (const char *r = p; r < s; r++)
                if (is_id(*r)) only = false;
            if (!only) { nb = s; ne = e; }
        }
        size_t plen = (size_t)(q - p);
        if (!first) {
            sputc(&o, ',');
            width++;
            if (width + 1 + plen + 2 > 72) {
                sputc(&o, '\n');
                for (size_t k = 0; k < col; k++) sputc(&o, ' ');
                width = col;
            } else {
                sputc(&o, ' ');
                width++;
            }
        }
        for (const char *r = p; r < q; r++) {
            if (r == nb) sputs(&o, "\\fI");
            if (*r == '-') sputs(&o, "\\-"); else sputc(&o, *r);
            if (r + 1 == ne) sputs(&o, "\\fB");
        }
        width += plen;
        first = false;
        p = q < close ? q + 1 : q;
    }
    sputs(&o, close);
    sputs(&o, "\\fR\n");
    fputs(o.s, f);
    free(o.s);
}

/* What the functions and types of a section share: its text and its
 * constants. */
static void put_section_notes(FILE *f, int sec, const char *heading, bool with_text)
{
    bool any = with_text && *sections[sec].text;
    for (size_t i = 0; i < nmacros && !any; i++) any = macros[i]->section == sec;
    if (!any) return;
    if (heading) {                              /* else under a heading of the caller's */
        fprintf(f, ".SH %s\n", heading);
        fputs(".SS ", f);
        put_inline(f, sections[sec].title, strlen(sections[sec].title), false);
        fputc('\n', f);
    }
    if (with_text && *sections[sec].text) put_text(f, sections[sec].text);
    bool started = false;
    for (size_t i = 0; i < nmacros; i++) {
        macro *m = macros[i];
        if (m->section != sec) continue;
        if (!started) {
            fputs(".PP\nConstants:\n", f);
            started = true;
        }
        /* a comment above a run of constants is said once, before the run */
        if (m->group_start && m->doc) put_text(f, m->doc);
        if (!m->trail && !*m->cond) {
            /* constants without a comment of their own: a table of values */
            size_t j = i, width = 0;
            while (j < nmacros && macros[j]->section == sec && !macros[j]->trail && !*macros[j]->cond &&
                   (j == i || !macros[j]->group_start)) {
                if (strlen(macros[j]->name) > width) width = strlen(macros[j]->name);
                j++;
            }
            fputs(".PP\n.nf\n", f);
            for (size_t k = i; k < j; k++) {
                fprintf(f, "\\fB%s\\fP", macros[k]->name);
                for (size_t pad = strlen(macros[k]->name); pad < width + 2; pad++) fputc(' ', f);
                put_inline(f, macros[k]->value, strlen(macros[k]->value), false);
                fputc('\n', f);
            }
            fputs(".fi\n", f);
            i = j - 1;
            continue;
        }
        fputs(".TP\n\\fB", f);
        put_inline(f, m->name, strlen(m->name), false);
        fputs("\\fP", f);
        if (*m->value) {
            fputs("  ", f);
            put_inline(f, m->value, strlen(m->value), false);
        }
        fputc('\n', f);
        if (*m->cond) {
            fputs("Only where ", f);
            put_inline(f, m->cond, strlen(m->cond), false);
            fputs(".\n", f);
        }
        if (m->trail) {
            char *flat = collapse(m->trail);
            put_line(f, flat);
            free(flat);
        }
    }
}

static bool mentions(const char *text, const char *name)
{
    return text && has_word(text, name);
}

static void put_see_also(FILE *f, const decl *self)
{
    const decl **v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ndecls; i++) {       /* the section's, in order */
        const decl *d = decls[i];
        if (d == self) continue;
        bool related = d->section == self->section;
        if (self->kind == TYPE && mentions(d->text, self->name)) related = true;
        if (mentions(self->doc, d->name)) related = true;
        if (related) {
            v = xrealloc(v, (n + 1) * sizeof *v);
            v[n++] = d;
        }
    }
    fputs(".SH SEE ALSO\n", f);
    for (size_t i = 0; i < n; i++) fprintf(f, ".BR %s (3),\n", v[i]->name);
    fputs(".BR libmio (3)\n", f);
    free(v);
}

static FILE *open_page(const char *dir, const char *name)
{
    str path = {0};
    sappendf(&path, "%s/%s.3", dir, name);
    FILE *f = fopen(path.s, "w");
    if (!f) {
        fprintf(stderr, "manpages: %s: %s\n", path.s, strerror(errno));
        exit(1);
    }
    free(path.s);
    return f;
}

static void close_page(FILE *f)
{
    if (ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "manpages: write error\n");
        exit(1);
    }
}

static const char *return_type_word(const decl *d)
{
    /* the words before the name: "int", "ssize_t", "const char *", ... */
    static char buf[128];
    const char *name = strstr(d->text, d->name);
    size_t n = name ? (size_t)(name - d->text) : 0;
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, d->text, n);
    buf[n] = '\0';
    char *e = buf + n;
    while (e > buf && e[-1] == ' ') *--e = '\0';
    return buf;
}

static void put_raw_code(FILE *f, const char *raw);

/* A page's head and synopsis: every declaration of d, each under the
 * conditions it is declared in; prototypes for functions, code for types. */
static FILE *page_start(const char *dir, const decl *d, bool function)
{
    FILE *f = open_page(dir, d->name);
    char *what = summary(d);
    put_th(f, d->name);
    put_name(f, d->name, what);
    free(what);

    fputs(".SH SYNOPSIS\n.nf\n", f);
    fprintf(f, ".B #include <%s>\n.PP\n", header_name);
    for (const decl *o = d, *prev = NULL; o; prev = o, o = o->other) {
        put_cond_open(f, o->cond, prev ? prev->cond : NULL);
        if (function)
            put_prototype(f, o->text);
        else
            put_raw_code(f, o->raw);
        if (!o->other && *o->cond) fputs("#endif\n", f);
    }
    return f;
}

static void function_page(const char *dir, const decl *d)
{
    FILE *f = page_start(dir, d, true);
    fputs(".fi\n.PP\nLink with \\fI\\-lmio\\fP (\\fIpkg\\-config \\-\\-cflags \\-\\-libs mio\\fP).\n", f);

    /* the comment, less what goes under RETURN VALUE and ERRORS */
    block *b;
    size_t nb = to_blocks(d->doc ? d->doc : "", &b);
    str ret = {0}, err = {0};
    bool first = true;
    for (size_t i = 0; i < nb; i++) {
        if (b[i].type != PARA) {
            first = false;
            continue;
        }
        char **s;
        size_t ns = sentences(b[i].text, &s);
        str keep = {0};
        for (size_t k = 0; k < ns; k++) {
            str *to = &keep;
            if (!first) {
                if (says_return(s[k])) to = &ret;
                else if (names_error(s[k])) to = &err;
            }
            if (first && says_return(s[k])) {   /* the summary stays, and also says it */
                if (ret.n) sputs(&ret, "\n\n");
                sputs(&ret, s[k]);
            }
            if (to != &keep && to->n) sputs(to, "\n\n");
            else if (to == &keep && keep.n) sputs(&keep, "  ");
            sputs(to, s[k]);
            first = false;
            free(s[k]);
        }
        free(s);
        free(b[i].text);
        b[i].text = keep.s ? keep.s : sdup("");
    }
    fputs(".SH DESCRIPTION\n", f);
    if (nb) put_blocks(f, b, nb);
    else fprintf(f, "Undocumented in \\fI<%s>\\fP.\n", header_name);

    const char *rt = return_type_word(d);
    bool code = !strcmp(rt, "int") || !strcmp(rt, "ssize_t");
    if (ret.n || code) {
        fputs(".SH RETURN VALUE\n", f);
        if (ret.n) put_text(f, ret.s);
        if (code) {
            fputs(".PP\n", f);
            if (!ret.n) fputs("A value of 0 or more on success.\n", f);
            fputs("On failure, a negative \\fBMIO_E*\\fP code (\\fBmio_strerror\\fP(3) names it); "
                  "\\fIerrno\\fP is not used.\n", f);
        }
    }
    if (err.n) {
        fputs(".SH ERRORS\n", f);
        /* "Errors: MIO_EX (why), MIO_EY (why)" as a list */
        char **s;
        size_t ns = 0;
        char **parts = NULL;
        ns = split_lines(err.s, &s);
        for (size_t k = 0; k < ns; k++) {
            if (!*s[k]) continue;
            const char *p = s[k];
            bool listed = false;
            if (!strncmp(p, "Errors: ", 8)) {
                p += 8;
                size_t np = 0;
                int depth = 0;
                const char *start = p;
                bool ok = true;
                for (const char *q = p;; q++) {
                    if (*q == '(') depth++;
                    if (*q == ')') depth--;
                    if (!*q || (depth == 0 && *q == ',' && q[1] == ' ')) {
                        parts = xrealloc(parts, (np + 1) * sizeof *parts);
                        size_t len = (size_t)(q - start);
                        if (!*q && len && start[len - 1] == '.') len--;
                        parts[np++] = sndup(start, len);
                        if (!*q) break;
                        start = q + 2;
                    }
                }
                for (size_t j = 0; j < np && ok; j++) {
                    const char *open = strstr(parts[j], " (");
                    size_t len = strlen(parts[j]);
                    ok = !strncmp(parts[j], "MIO_E", 5) && open && parts[j][len - 1] == ')';
                }
                if (ok) {
                    for (size_t j = 0; j < np; j++) {
                        char *open = strstr(parts[j], " (");
                        fprintf(f, ".TP\n.B %.*s\n", (int)(open - parts[j]), parts[j]);
                        put_inline(f, open + 2, strlen(open + 2) - 1, true);
                        fputc('\n', f);
                    }
                    listed = true;
                }
                for (size_t j = 0; j < np; j++) free(parts[j]);
            }
            if (!listed) {
                fputs(".PP\n", f);
                put_line(f, s[k]);
            }
        }
        for (size_t k = 0; k < ns; k++) free(s[k]);
        free(s);
        free(parts);
    }
    for (size_t i = 0; i < nb; i++) free(b[i].text);
    free(b);
    free(ret.s);
    free(err.s);

    put_section_notes(f, d->section, "NOTES", true);
    put_see_also(f, d);
    close_page(f);
}

/* Appends text to o without its comments. */
static void strip_comments(str *o, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 1 : p + strlen(p) - 1;
            continue;
        }
        sputc(o, *p);
    }
}

/* The declaration as the header writes it, comments removed. */
static void put_raw_code(FILE *f, const char *raw)
{
    str o = {0};
    strip_comments(&o, raw);
    /* drop trailing spaces and lines left empty */
    char **l;
    size_t n = split_lines(o.s ? o.s : "", &l);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(l[i]);
        while (len && isspace((unsigned char)l[i][len - 1])) l[i][--len] = '\0';
        if (len) {
            put_inline(f, l[i], len, false);
            fputc('\n', f);
        }
        free(l[i]);
    }
    free(l);
    free(o.s);
}

/* A struct's members with the comments written after them, when one of
 * them has one (else the synopsis says it all). */
static void put_members(FILE *f, const char *raw)
{
    bool documented = false;
    for (const char *q = strchr(raw, '{'); q && *q; q++)
        if (q[0] == ';') {
            const char *r = q + 1;
            while (*r == ' ' || *r == '\t') r++;
            if (r[0] == '/' && r[1] == '*') documented = true;
        }
    const char *p = strchr(raw, '{');
    if (!p) return;
    p++;
    int depth = 0;
    bool any = false;
    const char *start = p;
    while (*p) {
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
            continue;
        }
        if (*p == '{' || *p == '(') depth++;
        if (*p == '}' || *p == ')') {
            if (depth == 0) break;
            depth--;
        }
        if (*p == ';' && depth == 0) {
            char *member = sndup(start, (size_t)(p - start + 1));
            /* strip comments standing before it */
            str clean = {0};
            strip_comments(&clean, member);
            char *text = collapse(clean.s ? clean.s : "");
            /* the comment after it: on the same line */
            const char *q = p + 1;
            while (*q == ' ' || *q == '\t') q++;
            char *doc = NULL;
            if (q[0] == '/' && q[1] == '*') {
                const char *e = strstr(q + 2, "*/");
                if (e) {
                    doc = comment_body(q, (size_t)(e + 2 - q));
                    p = e + 1;
                }
            }
            if (!any && documented) fputs(".SH FIELDS\n", f);
            any = true;
            if (!documented) {
                free(doc);
                free(text);
                free(clean.s);
                free(member);
                start = p + 1;
                p++;
                continue;
            }
            fputs(".TP\n.B ", f);
            put_inline(f, text, strlen(text), false);
            fputc('\n', f);
            if (doc) {
                char *flat = collapse(doc);
                put_line(f, flat);
                free(flat);
            }
            free(doc);
            free(text);
            free(clean.s);
            free(member);
            start = p + 1;
        }
        p++;
    }
}

static void type_page(const char *dir, const decl *d)
{
    FILE *f = page_start(dir, d, false);
    fputs(".fi\n", f);
    fputs(".SH DESCRIPTION\n", f);
    bool own = d->doc && *d->doc;
    if (own) put_text(f, d->doc);
    else if (*sections[d->section].text) put_text(f, sections[d->section].text);
    else fprintf(f, "Declared in \\fI<%s>\\fP, section \"%s\".\n", header_name, sections[d->section].title);
    if (strchr(d->raw, '{')) put_members(f, d->raw);
    put_section_notes(f, d->section, "NOTES", own);
    put_see_also(f, d);
    close_page(f);
}

static void overview_page(const char *dir)
{
    FILE *f = open_page(dir, "libmio");
    put_th(f, "libmio");
    put_name(f, "libmio", "readiness-based non-blocking I/O for C11");
    fprintf(f, ".SH SYNOPSIS\n.nf\n.B #include <%s>\n.fi\n.PP\n", header_name);
    fputs("Link with \\fI\\-lmio\\fP (\\fIpkg\\-config \\-\\-cflags \\-\\-libs mio\\fP).\n", f);
    fputs(".SH DESCRIPTION\n", f);
    if (file_doc) put_text(f, file_doc);
    fputs(".SH REFERENCE\n", f);
    fprintf(f, "The sections of \\fI<%s>\\fP with their constants; each function and type has a page "
               "of its own.\n", header_name);
    for (size_t s = 0; s < nsections; s++) {
        fputs(".SS ", f);
        put_inline(f, sections[s].title, strlen(sections[s].title), false);
        fputc('\n', f);
        put_section_notes(f, (int)s, NULL, true);
        bool listed = false;
        for (size_t i = 0; i < ndecls; i++) {
            if (decls[i]->section == (int)s && !listed) {
                fputs(".PP\nFunctions and types:\n", f);
                listed = true;
            }
            if (decls[i]->section != (int)s) continue;
            char *what = summary(decls[i]);
            fprintf(f, ".TP\n.BR %s (3)\n", decls[i]->name);
            put_inline(f, what, strlen(what), false);
            fputc('\n', f);
            free(what);
        }
    }
    fputs(".SH SEE ALSO\n.BR pkg\\-config (1),\n.BR epoll (7),\n.BR poll (2)\n", f);
    close_page(f);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: manpages HEADER OUTDIR VERSION\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        fprintf(stderr, "manpages: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    str src = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0) sadd(&src, chunk, got);
    fclose(in);
    const char *slash = strrchr(argv[1], '/');
    header_name = slash ? slash + 1 : argv[1];
    version = argv[3];

    parse(src.s ? src.s : "");
    size_t funcs = 0, types = 0;
    for (size_t i = 0; i < ndecls; i++) {
        if (!decls[i]->doc && decls[i]->kind == FUNC)
            fprintf(stderr, "manpages: %s has no comment\n", decls[i]->name);
        if (decls[i]->kind == FUNC) {
            function_page(argv[2], decls[i]);
            funcs++;
        } else {
            type_page(argv[2], decls[i]);
            types++;
        }
    }
    if (!funcs) {
        fprintf(stderr, "manpages: no function found in %s\n", argv[1]);
        return 1;
    }
    overview_page(argv[2]);
    printf("manpages: %zu functions, %zu types, libmio.3\n", funcs, types);
    return 0;
}
