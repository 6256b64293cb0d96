/*
 * app.h - the application context handed to every API handler.
 *
 * Built once by `ingot serve` (src/main.c) and then read-only: the pointers are to thread-safe
 * modules, so handlers on the HTTP thread pool share it freely.
 */
#ifndef ING_API_APP_H
#define ING_API_APP_H

#include "catalog/catalog.h"
#include "ingest/pipeline.h"
#include "lake/lake.h"
#include "schema/registry.h"
#include "store/store.h"

struct app {
    struct store *store;
    struct registry *registry;
    struct catalog *catalog;
    struct lake *lake;
    struct pipeline *pipeline;
    const char *tenant;        /* "techmarketingdemos" */
    const char *ims_org;       /* default org id when x-gw-ims-org-id is absent */
};

#endif
