/*
 * gen.c - deterministic Luma-shaped test data (`ingot gen`); see gen.h.
 *
 * Each record draws its values from a small counter-based generator seeded with a hash of
 * (seed, kind, record index), and each person's attributes from a hash of (seed, person), so the
 * same person has the same name, city and crmId in every file, and any record can be produced
 * without producing the ones before it. Records are formatted by hand into one reused buffer that
 * is handed to the sink in blocks of about 1 MiB: generating a 10M-record file is bound by the
 * disk, not by printf.
 */
#include "cli/gen.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/date.h"
#include "util/mem.h"

#define GEN_FLUSH_BYTES ((size_t)1 << 20)
#define GEN_DEFAULT_TENANT "techmarketingdemos"
#define GEN_DEFAULT_PRODUCTS 92
#define GEN_DEFAULT_OVERLAP 0.8
/* First loyalty id: the tutorial's ids are seven digits starting with 5. */
#define GEN_LOYALTY_BASE 5000000
/* 2020-08-11T00:00:00Z, the tutorial's purchase date; purchases spread over the year after. */
#define GEN_PURCHASE_EPOCH_S 1597104000
#define GEN_DAY_S 86400

/* Salts that keep the random streams of the kinds and of people apart. */
enum { SALT_PERSON = 0x51, SALT_LOYALTY = 0x1001, SALT_CRM = 0x2002, SALT_PURCHASE = 0x3003,
       SALT_PRODUCT = 0x4004 };

/* ---------------------------------------------------------------- randomness */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static struct rng rng_for(uint64_t seed, uint64_t salt, uint64_t index)
{
    struct rng r = {mix64(seed ^ mix64(salt * 0x100000001B3ull + index))};
    return r;
}

static uint64_t rnd(struct rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return mix64(r->s);
}

/* Uniform in [0, n); the modulo bias is below 2^-40 for the small n used here. */
static uint64_t below(struct rng *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

static double unit(struct rng *r)
{
    return (double)(rnd(r) >> 11) * 0x1p-53;
}

/* ---------------------------------------------------------------- vocabulary */

/* ASCII-initial names (emails are made from them); a few carry UTF-8 to keep the reader honest. */
static const char *const FIRST[] = {
    "Daniel", "Romy", "Kara-lynn", "Cari", "Roi", "Claudian", "Xylia", "Obie", "Henka", "Clem",
    "Aurelia", "Benny", "Chloé", "Dmitri", "Esther", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
    "Kwame", "Leila", "Mateo", "Noor", "Olaf", "Priya", "Quentin", "Rosa", "Søren", "Tamsin",
    "Umar", "Vera", "Wendell", "Ximena", "Yusuf", "Zoë", "Amara", "Bastian", "Camille", "Dario",
};
static const char *const LAST[] = {
    "Wright", "Soppett", "Domanski", "Gulc", "Beadles", "Smartman", "Posselt", "Bryett", "Votier",
    "Blagbrough", "O'Hara", "Nakamura", "Müller", "Okafor", "Lindqvist", "Haddad", "Kowalski",
    "Fernández", "Chen", "Dubois", "Ivanova", "MacLeod", "Rossi", "Schmidt", "Tanaka", "Van Dyke",
    "Abara", "Byrne", "Costa", "Dahl", "Eriksen", "Fontaine", "Gallo", "Horvat", "Jensen", "Kaur",
};
/* Cities as they appear in the JSON text: one spelled with an escape, as some writers emit. */
static const char *const CITY[] = {
    "New York City", "Tamanan", "Labuhan", "Andrushivka", "Sangalhos", "Portland", "Carahue",
    "Motomiya", "Birr", "Xiliguan", "San Francisco", "S\xC3\xA3o Paulo", "M\\u00fcnchen", "Lagos",
    "Kraków", "Reykjavík", "Osaka", "Nairobi", "Lyon", "Toronto", "Austin", "Seattle", "Denver",
    "Boston", "Chicago", "Atlanta", "Dublin", "Porto", "Gdańsk", "Hanoi", "Perth", "Quito",
};
static const char *const TIERS[] = {"bronze", "silver", "gold", "platinum"};
static const char *const GENDERS[] = {"male", "female", "not_specified"};
static const char *const CATEGORIES[] = {
    "men:tops:hoodies_sweatshirts", "women:tops:jackets", "men:tops:tees", "products:gear:fitness",
    "women:bottoms:pants", "products:gear:bags", "men:bottoms:shorts", "women:tops:bras_tanks",
};
/* Two-letter SKU codes, one per category above. */
static const char *const CODES[] = {"MH", "WJ", "MS", "UG", "WP", "UB", "MSH", "WB"};
static const char *const ADJ[] = {"Abominable", "Adrienne", "Aero", "Affirm", "Breathe-Easy",
                                  "Chaz", "Cronus", "Didi", "Gobi", "Orestes", "Zing", "Voyage"};
static const char *const NOUN[] = {"Hoodie", "Trek Jacket", "Daily Fitness Tee", "Water Bottle",
                                   "Yoga Pant", "Duffle Bag", "Short", "Sport Bra"};
static const char *const COLORS[] = {"", "blue", "black", "red", "green", "gray", "purple"};
static const char *const SIZES[] = {"", "xs", "s", "m", "l", "xl"};

#define PICK(arr, r) ((arr)[below((r), ING_ARRAY_LEN(arr))])

/* ---------------------------------------------------------------- output */

struct out {
    struct buf b;
    gen_sink_fn *sink;
    void *ctx;
    int64_t bytes;
    int rc;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (buf_append(&o->b, p, n) != 0)
        abort(); /* a record is a few hundred bytes; the buffer has no cap */
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + sizeof(tmp) - n, n);
}

static void put_digits(struct out *o, uint64_t v, int width)
{
    char tmp[20];
    for (int i = width - 1; i >= 0; i--) {
        tmp[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put(o, tmp, (size_t)width);
}

static void put_hex(struct out *o, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    for (int i = digits - 1; i >= 0; i--) {
        tmp[i] = hex[v & 15];
        v >>= 4;
    }
    put(o, tmp, (size_t)digits);
}

/* Generated dates are years 1970..2023, which date_put_ymd always writes. */
static void put_date(struct out *o, int64_t days)
{
    char tmp[10];
    memset(tmp, '0', sizeof(tmp));
    (void)date_put_ymd(tmp, days);
    put(o, tmp, sizeof(tmp));
}

static void put_datetime(struct out *o, int64_t secs)
{
    int64_t days = secs / GEN_DAY_S, rem = secs % GEN_DAY_S;
    put_date(o, days);
    put(o, "T", 1);
    put_digits(o, (uint64_t)(rem / 3600), 2);
    put(o, ":", 1);
    put_digits(o, (uint64_t)(rem / 60 % 60), 2);
    put(o, ":", 1);
    put_digits(o, (uint64_t)(rem % 60), 2);
    put(o, "Z", 1);
}

static void flush(struct out *o, bool force)
{
    if (o->rc || o->b.len == 0 || (!force && o->b.len < GEN_FLUSH_BYTES))
        return;
    o->rc = o->sink(o->ctx, o->b.data, o->b.len);
    o->bytes += (int64_t)o->b.len;
    buf_reset(&o->b);
}

/* ---------------------------------------------------------------- people */

struct person {
    int64_t p;
    const char *first, *last, *city, *gender;
    char crm[33];
    unsigned phone[3];
};

int64_t gen_loyalty_id(int64_t p)
{
    return GEN_LOYALTY_BASE + p;
}

void gen_crm_id(uint64_t seed, int64_t p, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    struct rng r = rng_for(seed, SALT_PERSON, (uint64_t)p);
    uint64_t a = rnd(&r), b = rnd(&r);
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

static void person_get(uint64_t seed, int64_t p, struct person *pe)
{
    gen_crm_id(seed, p, pe->crm);
    /* A second stream for the attributes: the first is the crmId's. */
    struct rng r = rng_for(seed, SALT_PERSON + 1, (uint64_t)p);
    pe->p = p;
    pe->first = PICK(FIRST, &r);
    pe->last = PICK(LAST, &r);
    pe->city = PICK(CITY, &r);
    pe->gender = PICK(GENDERS, &r);
    pe->phone[0] = 200 + (unsigned)below(&r, 800);
    pe->phone[1] = 100 + (unsigned)below(&r, 900);
    pe->phone[2] = (unsigned)below(&r, 10000);
}

/* Lower-case ASCII letters of a name (the email local part). */
static void put_email_part(struct out *o, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c >= 'a' && c <= 'z')
            put(o, &c, 1);
    }
}

/* ---------------------------------------------------------------- records */

struct ctx {
    const struct gen_opts *o;
    const char *tenant;
    int64_t people, products, crm_offset;
};

static void put_tenant_open(struct out *o, const struct ctx *c)
{
    puts_(o, "{\"_");
    puts_(o, c->tenant);
    puts_(o, "\":{\"systemIdentifier\":{");
}

/* bad: -1 for a good record, else which of the four kinds of damage. */
/* A person's name as XDM has it, {"firstName":..,"lastName":..}, or as one string (a planted
 * type error). */
static void put_name(struct out *o, const struct person *pe, bool as_string)
{
    if (as_string) {
        puts_(o, "\"");
        puts_(o, pe->first);
        puts_(o, " ");
        puts_(o, pe->last);
        puts_(o, "\"");
    } else {
        puts_(o, "{\"firstName\":\"");
        puts_(o, pe->first);
        puts_(o, "\",\"lastName\":\"");
        puts_(o, pe->last);
        puts_(o, "\"}");
    }
}

static void loyalty_record(struct out *o, const struct ctx *c, int64_t i, int bad)
{
    struct rng r = rng_for(c->o->seed, SALT_LOYALTY, (uint64_t)i);
    struct person pe;
    person_get(c->o->seed, i % c->people, &pe);
    put_tenant_open(o, c);
    puts_(o, "\"loyaltyId\":");
    put_u64(o, (uint64_t)gen_loyalty_id(pe.p));
    puts_(o, ",\"crmId\":\"");
    puts_(o, pe.crm);
    puts_(o, "\"}},\"loyalty\":{\"points\":");
    if (bad == 1)
        puts_(o, "\"lots\"");
    else
        put_u64(o, below(&r, 1000000));
    puts_(o, bad == 0 ? ",\"tier\":" : ",\"tier\":\"");
    puts_(o, PICK(TIERS, &r));
    puts_(o, bad == 0 ? ",\"joinDate\":\"" : "\",\"joinDate\":\"");
    if (bad == 2)
        puts_(o, "2000-02-30");
    else
        put_date(o, (int64_t)below(&r, 19000)); /* 1970 .. 2022 */
    puts_(o, "\"},\"person\":{\"name\":");
    put_name(o, &pe, bad == 3);
    puts_(o, "}");
    puts_(o, ",\"homeAddress\":{\"city\":\"");
    puts_(o, pe.city);
    puts_(o, "\"}}");
}

static void crm_record(struct out *o, const struct ctx *c, int64_t i, int bad)
{
    struct person pe;
    person_get(c->o->seed, c->crm_offset + i % c->people, &pe);
    put_tenant_open(o, c);
    puts_(o, "\"crmId\":\"");
    puts_(o, pe.crm);
    puts_(o, "\"}},\"person\":{\"name\":");
    put_name(o, &pe, bad == 1);
    puts_(o, bad == 0 ? ",\"gender\":" : ",\"gender\":\"");
    puts_(o, pe.gender);
    puts_(o, bad == 0 ? "},\"personalEmail\":" : "\"},\"personalEmail\":");
    if (bad == 3) {
        puts_(o, "\"unknown\"");
    } else {
        puts_(o, "{\"address\":\"");
        char initial = pe.first[0];
        put_email_part(o, (char[2]){initial, '\0'});
        put_email_part(o, pe.last);
        put_u64(o, (uint64_t)pe.p);
        puts_(o, "@enablementadobe.com\"}");
    }
    puts_(o, ",\"mobilePhone\":{\"number\":\"");
    put_digits(o, pe.phone[0], 3);
    puts_(o, "-");
    put_digits(o, pe.phone[1], 3);
    puts_(o, "-");
    put_digits(o, pe.phone[2], 4);
    puts_(o, "\"},\"homeAddress\":{\"city\":");
    if (bad == 2) {
        puts_(o, "[\"");
        puts_(o, pe.city);
        puts_(o, "\"]}}");
    } else {
        puts_(o, "\"");
        puts_(o, pe.city);
        puts_(o, "\"}}");
    }
}

static void put_sku(struct out *o, int64_t k)
{
    size_t ncodes = ING_ARRAY_LEN(CODES);
    puts_(o, k % 3 == 0 ? "24-" : "LL");
    puts_(o, CODES[(uint64_t)k % ncodes]);
    put_digits(o, (uint64_t)k / ncodes + 1, k / (int64_t)ncodes + 1 >= 100 ? 4 : 2);
}

static void purchase_record(struct out *o, const struct ctx *c, int64_t i, int bad)
{
    struct rng r = rng_for(c->o->seed, SALT_PURCHASE, (uint64_t)i);
    int64_t p = (int64_t)below(&r, (uint64_t)c->people);
    put_tenant_open(o, c);
    puts_(o, "\"loyaltyId\":");
    put_u64(o, (uint64_t)gen_loyalty_id(p));
    puts_(o, "}},\"commerce\":{\"order\":{\"purchaseID\":\"");
    put_digits(o, below(&r, 1000), 3);
    puts_(o, "-");
    put_digits(o, below(&r, 1000), 3);
    puts_(o, "-");
    put_digits(o, below(&r, 1000), 3);
    puts_(o, "-");
    put_digits(o, below(&r, 10000), 4);
    puts_(o, "\",\"priceTotal\":");
    if (bad == 1) {
        puts_(o, "\"n/a\"");
    } else {
        uint64_t cents = 500 + below(&r, 50000);
        put_u64(o, cents / 100);
        puts_(o, ".");
        put_digits(o, cents % 100, 2);
    }
    puts_(o, "}},\"productListItems\":[");
    int items = 1 + (int)below(&r, 5);
    for (int k = 0; k < items; k++) {
        puts_(o, k ? ",{\"SKU\":\"" : "{\"SKU\":\"");
        put_sku(o, (int64_t)below(&r, (uint64_t)c->products));
        puts_(o, "\",\"quantity\":");
        put_u64(o, 1 + below(&r, 3));
        if (bad == 0 && k == 0)
            puts_(o, "x"); /* "1x" is not a JSON number */
        else if (bad == 3 && k == items - 1)
            puts_(o, ".5"); /* not a whole number: no integer */
        puts_(o, "}");
    }
    puts_(o, "],\"timestamp\":\"");
    if (bad == 2)
        puts_(o, "2020-13-01T00:00:00Z");
    else
        put_datetime(o, GEN_PURCHASE_EPOCH_S + (int64_t)below(&r, 365 * GEN_DAY_S));
    puts_(o, "\",\"_id\":\"");
    uint64_t a = rnd(&r), b = rnd(&r);
    put_hex(o, a >> 32, 8);
    puts_(o, "-");
    put_hex(o, (a >> 16) & 0xFFFF, 4);
    puts_(o, "-4");
    put_hex(o, a & 0xFFF, 3);
    puts_(o, "-");
    put_hex(o, 0x8 | (b >> 62), 1);
    put_hex(o, (b >> 48) & 0xFFF, 3);
    puts_(o, "-");
    put_hex(o, b & 0xFFFFFFFFFFFFull, 12);
    puts_(o, "\"}");
}

/* A product row: SKU,Name,Category,Color,Size,Price (CSV; names with a comma are quoted). */
static void product_row(struct out *o, const struct ctx *c, int64_t k, int bad)
{
    struct rng r = rng_for(c->o->seed, SALT_PRODUCT, (uint64_t)k);
    size_t cat = (size_t)k % ING_ARRAY_LEN(CODES);
    put_sku(o, k);
    puts_(o, ",");
    bool quoted = below(&r, 10) == 0;
    if (quoted)
        puts_(o, "\"");
    puts_(o, PICK(ADJ, &r));
    puts_(o, " ");
    puts_(o, NOUN[cat]);
    if (quoted)
        puts_(o, ", Limited Edition\"");
    puts_(o, ",");
    puts_(o, CATEGORIES[cat]);
    if (bad == 1) { /* a row that lost its last columns */
        return;
    }
    puts_(o, ",");
    puts_(o, PICK(COLORS, &r));
    puts_(o, ",");
    puts_(o, PICK(SIZES, &r));
    puts_(o, ",");
    if (bad >= 0)
        puts_(o, "n/a");
    else
        put_u64(o, 5 + below(&r, 116));
}

/* ---------------------------------------------------------------- driver */

static const char *const KIND_NAMES[] = {"loyalty", "crm", "purchases", "products"};

int gen_kind_parse(const char *name, enum gen_kind *out)
{
    for (size_t i = 0; i < ING_ARRAY_LEN(KIND_NAMES); i++)
        if (name && strcmp(name, KIND_NAMES[i]) == 0) {
            *out = (enum gen_kind)i;
            return 0;
        }
    return ING_EINVAL;
}

static uint64_t kind_salt(enum gen_kind k)
{
    switch (k) {
    case GEN_LOYALTY: return SALT_LOYALTY;
    case GEN_CRM: return SALT_CRM;
    case GEN_PURCHASES: return SALT_PURCHASE;
    case GEN_PRODUCTS: return SALT_PRODUCT;
    }
    return 0;
}

int gen_run(const struct gen_opts *o, gen_sink_fn *sink, void *sink_ctx, struct gen_stats *st,
            struct ing_err *err)
{
    if (st)
        memset(st, 0, sizeof(*st));
    if (!o || !sink || o->records < 0 || !(o->bad_share >= 0 && o->bad_share <= 1) ||
        o->people < 0 || o->products < 0 || o->overlap > 1 || o->kind > GEN_PRODUCTS)
        return ing_err_set(err, ING_EINVAL, "gen: bad options");
    struct ctx c = {
        .o = o,
        .tenant = o->tenant && o->tenant[0] ? o->tenant : GEN_DEFAULT_TENANT,
        .people = o->people ? o->people : (o->records ? o->records : 1),
        .products = o->products ? o->products : GEN_DEFAULT_PRODUCTS,
    };
    if (c.tenant[0] == '_')
        c.tenant++;
    double overlap = o->overlap < 0 ? GEN_DEFAULT_OVERLAP : o->overlap;
    c.crm_offset = (int64_t)((1.0 - overlap) * (double)c.people + 0.5);
    if (o->kind == GEN_PRODUCTS && o->records > c.products)
        c.products = o->records; /* every row is a distinct SKU */

    struct out out = {.sink = sink, .ctx = sink_ctx};
    int64_t bad_count = 0;
    bool array = o->layout == GEN_ARRAY && o->kind != GEN_PRODUCTS;
    if (o->kind == GEN_PRODUCTS)
        puts_(&out, "SKU,Name,Category,Color,Size,Price");
    else if (array)
        puts_(&out, "[");
    for (int64_t i = 0; i < o->records && out.rc == 0; i++) {
        /* Badness has its own stream so that the share does not shift the good records. */
        struct rng br = rng_for(o->seed, kind_salt(o->kind) ^ 0xBAD, (uint64_t)i);
        int bad = -1;
        if (o->bad_share > 0 && unit(&br) < o->bad_share) {
            bad = (int)below(&br, o->kind == GEN_PRODUCTS ? 2 : 4);
            bad_count++;
        }
        if (o->kind == GEN_PRODUCTS)
            puts_(&out, "\r\n"); /* the tutorial's file: CRLF, none after the last row */
        else if (array && i > 0)
            puts_(&out, ",\n");
        switch (o->kind) {
        case GEN_LOYALTY: loyalty_record(&out, &c, i, bad); break;
        case GEN_CRM: crm_record(&out, &c, i, bad); break;
        case GEN_PURCHASES: purchase_record(&out, &c, i, bad); break;
        case GEN_PRODUCTS: product_row(&out, &c, i, bad); break;
        }
        if (!array && o->kind != GEN_PRODUCTS)
            puts_(&out, "\n");
        flush(&out, false);
    }
    if (array)
        puts_(&out, "]\n");
    flush(&out, true);
    buf_free(&out.b);
    if (out.rc)
        return ing_err_set(err, out.rc, "gen: cannot write the output");
    if (st) {
        st->records = o->records;
        st->bad_records = bad_count;
        st->bytes = out.bytes;
    }
    return 0;
}

static int file_sink(void *ctx, const void *p, size_t n)
{
    return fwrite(p, 1, n, (FILE *)ctx) == n ? 0 : ING_EIO;
}

int gen_write_file(const struct gen_opts *o, const char *path, struct gen_stats *st,
                   struct ing_err *err)
{
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f)
        return ing_err_errno(err, errno, "gen: cannot create %s", path);
    int rc = gen_run(o, file_sink, f, st, err);
    if (fflush(f) != 0 && rc == 0)
        rc = ing_err_errno(err, errno, "gen: cannot write %s", path);
    if (!to_stdout && fclose(f) != 0 && rc == 0)
        rc = ing_err_errno(err, errno, "gen: cannot write %s", path);
    return rc;
}

/* ---------------------------------------------------------------- schemas */

static json_t *leaf(const char *xdm_type)
{
    if (strcmp(xdm_type, "date-time") == 0)
        return json_pack("{s:s, s:s, s:s}", "type", "string", "format", "date-time",
                         "meta:xdmType", "date-time");
    if (strcmp(xdm_type, "number") == 0)
        return json_pack("{s:s, s:s}", "type", "number", "meta:xdmType", "number");
    if (strcmp(xdm_type, "int") == 0)
        return json_pack("{s:s, s:s}", "type", "integer", "meta:xdmType", "int");
    return json_pack("{s:s, s:s}", "type", "string", "meta:xdmType", "string");
}

static json_t *object(json_t *props)
{
    return json_pack("{s:s, s:s, s:o}", "type", "object", "meta:xdmType", "object", "properties",
                     props);
}

json_t *gen_schema(enum gen_kind kind, const char *tenant)
{
    if (!tenant || !tenant[0])
        tenant = GEN_DEFAULT_TENANT;
    if (tenant[0] == '_')
        tenant++;
    char tkey[160];
    snprintf(tkey, sizeof(tkey), "_%s", tenant);
    json_t *props = NULL;
    const char *cls = "https://ns.adobe.com/xdm/context/profile";
    switch (kind) {
    case GEN_LOYALTY:
        props = json_pack(
            "{s:o, s:o, s:o, s:o}", tkey,
            object(json_pack("{s:o}", "systemIdentifier",
                             object(json_pack("{s:o, s:o}", "loyaltyId", leaf("string"), "crmId",
                                              leaf("string"))))),
            "loyalty",
            object(json_pack("{s:o, s:o, s:o}", "points", leaf("number"), "tier",
                             leaf("string"), "joinDate", leaf("date-time"))),
            "person",
            object(json_pack("{s:o}", "name",
                             object(json_pack("{s:o, s:o}", "firstName", leaf("string"),
                                              "lastName", leaf("string"))))),
            "homeAddress", object(json_pack("{s:o}", "city", leaf("string"))));
        break;
    case GEN_CRM:
        props = json_pack(
            "{s:o, s:o, s:o, s:o, s:o}", tkey,
            object(json_pack("{s:o}", "systemIdentifier",
                             object(json_pack("{s:o}", "crmId", leaf("string"))))),
            "person",
            object(json_pack("{s:o, s:o}", "name",
                             object(json_pack("{s:o, s:o}", "firstName", leaf("string"),
                                              "lastName", leaf("string"))),
                             "gender", leaf("string"))),
            "personalEmail", object(json_pack("{s:o}", "address", leaf("string"))),
            "mobilePhone", object(json_pack("{s:o}", "number", leaf("string"))), "homeAddress",
            object(json_pack("{s:o}", "city", leaf("string"))));
        break;
    case GEN_PURCHASES:
        cls = "https://ns.adobe.com/xdm/context/experienceevent";
        props = json_pack(
            "{s:o, s:o, s:o, s:o, s:o}", tkey,
            object(json_pack("{s:o}", "systemIdentifier",
                             object(json_pack("{s:o}", "loyaltyId", leaf("string"))))),
            "commerce",
            object(json_pack("{s:o}", "order",
                             object(json_pack("{s:o, s:o}", "purchaseID", leaf("string"),
                                              "priceTotal", leaf("number"))))),
            "productListItems",
            json_pack("{s:s, s:s, s:o}", "type", "array", "meta:xdmType", "array", "items",
                      object(json_pack("{s:o, s:o}", "SKU", leaf("string"), "quantity",
                                       leaf("int")))),
            "timestamp", leaf("date-time"), "_id", leaf("string"));
        break;
    case GEN_PRODUCTS:
        return NULL;
    }
    char *id = xasprintf("https://ns.adobe.com/%s/schemas/gen-%s", tenant, KIND_NAMES[kind]);
    json_t *schema = json_pack("{s:s, s:s, s:s, s:s, s:o}", "$id", id, "meta:class", cls,
                               "title", KIND_NAMES[kind], "type", "object", "properties", props);
    free(id);
    return schema;
}

/* ---------------------------------------------------------------- command line */

static void gen_usage(FILE *f)
{
    fprintf(f,
            "usage: ingot gen --kind loyalty|crm|purchases|products [--records N] [--seed S]\n"
            "                 [--bad-share F] [--layout lines|array] [--people N]\n"
            "                 [--overlap F] [--products N] [--tenant NAME] [--out FILE]\n"
            "                 [--schema-out FILE]\n"
            "\n"
            "  --records N        records to write (default 1000)\n"
            "  --seed S           random seed (default 1); same options, same bytes\n"
            "  --bad-share F      share of bad records, 0..1 (default 0)\n"
            "  --layout L         JSON Lines (default) or one JSON array\n"
            "  --people N         shared person universe (default: records)\n"
            "  --overlap F        share of CRM people who are loyalty members (default 0.8)\n"
            "  --products N       product catalogue size (default 92)\n"
            "  --out FILE         output file (default -, stdout)\n"
            "  --schema-out FILE  also write the kind's compact resolved schema\n");
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end)
        return false;
    *out = v;
    return true;
}

int gen_main(int argc, char **argv)
{
    struct gen_opts o = {.records = 1000, .seed = 1, .overlap = -1};
    const char *out = "-", *schema_out = NULL;
    bool have_kind = false;
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'},      {"records", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},      {"bad-share", required_argument, NULL, 'b'},
        {"layout", required_argument, NULL, 'L'},    {"people", required_argument, NULL, 'p'},
        {"overlap", required_argument, NULL, 'v'},   {"products", required_argument, NULL, 'P'},
        {"tenant", required_argument, NULL, 't'},    {"out", required_argument, NULL, 'o'},
        {"schema-out", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    int64_t seed;
    while ((ch = getopt_long(argc, argv, "k:n:s:b:L:p:v:P:t:o:S:h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (ch) {
        case 'k': ok = have_kind = gen_kind_parse(optarg, &o.kind) == 0; break;
        case 'n': ok = parse_i64(optarg, &o.records); break;
        case 's':
            ok = parse_i64(optarg, &seed);
            o.seed = (uint64_t)seed;
            break;
        case 'b': ok = parse_f64(optarg, &o.bad_share) && o.bad_share >= 0 && o.bad_share <= 1;
            break;
        case 'L':
            ok = !strcmp(optarg, "lines") || !strcmp(optarg, "array");
            o.layout = !strcmp(optarg, "array") ? GEN_ARRAY : GEN_LINES;
            break;
        case 'p': ok = parse_i64(optarg, &o.people); break;
        case 'v': ok = parse_f64(optarg, &o.overlap) && o.overlap >= 0 && o.overlap <= 1; break;
        case 'P': ok = parse_i64(optarg, &o.products); break;
        case 't': o.tenant = optarg; break;
        case 'o': out = optarg; break;
        case 'S': schema_out = optarg; break;
        case 'h': gen_usage(stdout); return 0;
        default: ok = false; break;
        }
        if (!ok) {
            if (ch != '?')
                fprintf(stderr, "ingot gen: bad option value '%s'\n", optarg ? optarg : "");
            gen_usage(stderr);
            return 2;
        }
    }
    if (!have_kind || optind != argc) {
        gen_usage(stderr);
        return 2;
    }
    struct ing_err err;
    ing_err_clear(&err);
    if (schema_out) {
        json_t *schema = gen_schema(o.kind, o.tenant);
        if (!schema) {
            fprintf(stderr, "ingot gen: %s has no JSON schema (it is CSV)\n", KIND_NAMES[o.kind]);
            return 2;
        }
        int jrc = json_dump_file(schema, schema_out, JSON_INDENT(1) | JSON_SORT_KEYS);
        json_decref(schema);
        if (jrc != 0) {
            fprintf(stderr, "ingot gen: cannot write %s\n", schema_out);
            return 1;
        }
    }
    struct gen_stats st;
    if (gen_write_file(&o, out, &st, &err) != 0) {
        fprintf(stderr, "ingot gen: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "{\"kind\":\"%s\",\"records\":%lld,\"bad_records\":%lld,\"bytes\":%lld}\n",
            KIND_NAMES[o.kind], (long long)st.records, (long long)st.bad_records,
            (long long)st.bytes);
    return 0;
}
