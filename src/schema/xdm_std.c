/*
 * xdm_std.c - loading the built-in XDM resources and the standard identity namespaces.
 *
 * The XDM resources come from the generated xdm_std_data.c (see tools/gen-xdm-std.mjs for what
 * was kept, dropped and added, notably IdentityMap on the XDM Individual Profile class, as AEP
 * has it). The namespace table below lists AEP's well-known standard namespaces with their
 * well-known numeric ids, which Privacy Service, Identity Service and Profile use interchangeably
 * with the codes.
 */
#include "schema/xdm_std.h"

#include <stdint.h>

int xdm_std_load(json_t **by_id, struct ing_err *err)
{
    json_t *all = json_object();
    int rc = 0;
    for (size_t i = 0; i < xdm_std_data_len; i++) {
        json_error_t jerr;
        json_t *doc = json_loads(xdm_std_data[i].json, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            rc = ing_err_set(err, ING_EINTERNAL, "built-in XDM resource %s does not parse: %s",
                             xdm_std_data[i].id, jerr.text);
            goto out;
        }
        json_object_set_new(all, xdm_std_data[i].id, doc);
    }
out:
    if (rc) {
        json_decref(all);
        all = NULL;
    }
    *by_id = all;
    return rc;
}

struct std_ns {
    int64_t id;
    const char *code;
    const char *name;
    const char *description;
    const char *id_type;
    int64_t created; /* ms; AEP's published creation times where known */
};

/*
 * Ids and codes as AEP publishes them (Identity Service "list namespaces" example and the Privacy
 * Service appendix of standard namespaces: CORE 0, ECID 4, Email 6, Phone 7, WAID 8, TNTID 9,
 * AAID 10, AdCloud 411, GAID 20914, IDFA 20915). The hashed-email and hashed-phone namespaces
 * exist in every AEP organisation, but no source read for this table gave their numeric ids;
 * 11 and 17 are our assumption and are the only unconfirmed entries.
 */
static const struct std_ns std_namespaces[] = {
    {0, "CORE", "CORE", "CORE Namespace", "COOKIE", 1441122419000},
    {4, "ECID", "ECID", "ECID Namespace", "COOKIE", 1495153678000},
    {6, "Email", "Email", "Email Namespace", "EMAIL", 1441122419000},
    {7, "Phone", "Phone", "Phone Namespace", "PHONE", 1441122419000},
    {8, "WAID", "Windows AID", "Windows Advertising ID", "DEVICE", 1441122419000},
    {9, "TNTID", "TNTID", "Adobe Target ID", "COOKIE", 1441122419000},
    {10, "AAID", "Adobe Analytics (Legacy ID)", "Adobe Analytics ID", "COOKIE", 1441122419000},
    {11, "Email_LC_SHA256", "Emails (SHA256, lowercased)",
     "Email addresses, lower-cased, then hashed with SHA-256", "EMAIL", 1441122419000},
    {17, "Phone_SHA256", "Phone (SHA256)", "Phone numbers hashed with SHA-256", "PHONE",
     1441122419000},
    {411, "AdCloud", "AdCloud", "Adobe AdCloud - ID Syncing Partner", "COOKIE", 1522783145000},
    {20914, "GAID", "Google Ad ID (GAID)", "Google Advertising ID", "DEVICE", 1441122419000},
    {20915, "IDFA", "Apple IDFA (ID for Advertisers)", "Apple ID for Advertisers", "DEVICE",
     1441122419000},
};

json_t *xdm_std_namespaces(void)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof(std_namespaces) / sizeof(std_namespaces[0]); i++) {
        const struct std_ns *ns = &std_namespaces[i];
        json_array_append_new(
            arr, json_pack("{sI ss ss ss ss ss ss sb sI sI}", "id", (json_int_t)ns->id, "code",
                           ns->code, "name", ns->name, "description", ns->description, "idType",
                           ns->id_type, "namespaceType", "Standard", "status", "ACTIVE", "custom",
                           0, "updateTime", (json_int_t)ns->created, "createTime",
                           (json_int_t)ns->created));
    }
    return arr;
}
