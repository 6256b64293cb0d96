/*
 * xdm_std.h - the standard resources built into ingot: XDM classes, behaviours, field groups and
 * data types (the Schema Registry's "global" container) and the standard identity namespaces.
 *
 * The XDM resources are generated into xdm_std_data.c by tools/gen-xdm-std.mjs from adobe/xdm
 * (compact JSON, one string per resource). xdm_std_load parses them once; the registry keeps the
 * result immutable for the life of the process.
 * Threads: the data is constant; the functions are reentrant.
 */
#ifndef ING_SCHEMA_XDM_STD_H
#define ING_SCHEMA_XDM_STD_H

#include <stddef.h>
#include <jansson.h>

#include "util/err.h"

struct xdm_std_res {
    const char *id;   /* "$id" */
    const char *kind; /* "classes", "behaviors", "mixins" (field groups), "datatypes" */
    const char *json; /* compact JSON of the resource */
};

extern const struct xdm_std_res xdm_std_data[];
extern const size_t xdm_std_data_len;

/* Parse every standard resource into a new object keyed by "$id". */
int xdm_std_load(json_t **by_id, struct ing_err *err);

/* The standard identity namespaces (ECID, Email, Phone, ...) as a new JSON array of AEP
 * namespace objects ({"id","code","name","description","idType","namespaceType":"Standard",
 * "status":"ACTIVE","custom":false,"updateTime","createTime"}). */
json_t *xdm_std_namespaces(void);

#endif
