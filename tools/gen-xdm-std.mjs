#!/usr/bin/env node
// gen-xdm-std.mjs - generate src/schema/xdm_std_data.c, the standard XDM resources that ship
// inside the ingot binary (the Schema Registry's "global" container).
//
// Usage: node tools/gen-xdm-std.mjs [xdm-components-dir] [output.c]
//   defaults: ../shared/reference/xdm/components (beside the repo)  src/schema/xdm_std_data.c
//
// Reads every *.schema.json under behaviors/, classes/, datatypes/ and fieldgroups/ (a copy of
// adobe/xdm's components), makes each one compact and writes one C string per resource:
//  - dropped: "description" and "examples" keywords (prose), "meta:license", "meta:titleId",
//    "meta:descriptionId", "$schema". Keys inside "properties", "patternProperties",
//    "definitions" and "meta:enum" are names, not keywords, and are always kept (a property or a
//    definition may well be called "description").
//  - kept: $id, title, type, format, enum, meta:enum, min/max, pattern, default, required,
//    every other meta:* and the structure (properties, items, additionalProperties, allOf, $ref,
//    definitions).
//  - added, as AEP's registry shows them: "meta:altId" (_xdm.context.profile), "meta:resourceType"
//    (classes | behaviors | mixins | datatypes), "meta:containerId": "global", "version".
//  - AEP difference, on purpose: adobe/xdm's XDM Individual Profile class does not reference the
//    IdentityMap field group, but AEP's class does (its UI and xed-full responses show
//    "identityMap" on every Profile schema). We add it to the class's allOf and meta:extends so
//    that ingot's Profile schemas match AEP's.
// No npm dependencies. The output is committed; re-run after updating the reference copy.
import fs from 'node:fs';
import path from 'node:path';

const srcDir = process.argv[2] || new URL('../../shared/reference/xdm/components', import.meta.url).pathname;
const outFile = process.argv[3] || 'src/schema/xdm_std_data.c';

const KIND_BY_DIR = { behaviors: 'behaviors', classes: 'classes', datatypes: 'datatypes', fieldgroups: 'mixins' };
const DROP = new Set(['description', 'examples', 'meta:license', 'meta:titleId', 'meta:descriptionId', '$schema']);
const NAME_MAPS = new Set(['properties', 'patternProperties', 'definitions', 'meta:enum']);
const PROFILE = 'https://ns.adobe.com/xdm/context/profile';
const IDENTITYMAP = 'https://ns.adobe.com/xdm/context/identitymap';

function walk(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walk(p));
    else if (ent.name.endsWith('.schema.json')) out.push(p);
  }
  return out.sort();
}

// Strip prose keywords; `names` is true when the keys of `node` are names (property names,
// definition names, enum values), which are never dropped.
function compact(node, names = false) {
  if (Array.isArray(node)) return node.map((v) => compact(v));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (!names && DROP.has(k)) continue;
    out[k] = names ? compact(v) : compact(v, NAME_MAPS.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v));
  }
  return out;
}

// AEP's dot-notation alternate id: https://ns.adobe.com/xdm/context/profile -> _xdm.context.profile;
// other hosts keep their host: http://schema.org/GeoCoordinates -> _schema.org.GeoCoordinates.
function altId(id) {
  const u = new URL(id);
  const parts = u.pathname.split('/').filter(Boolean);
  const head = u.host === 'ns.adobe.com' ? [] : [u.host];
  return '_' + [...head, ...parts].join('.');
}

function cString(s) {
  // Split into ~100-byte literal pieces; escape backslash, quote and anything outside printable ASCII.
  const bytes = Buffer.from(s, 'utf8');
  const pieces = [];
  let cur = '';
  let n = 0;
  for (const b of bytes) {
    let e;
    if (b === 0x5c) e = '\\\\';
    else if (b === 0x22) e = '\\"';
    else if (b >= 0x20 && b < 0x7f && b !== 0x3f) e = String.fromCharCode(b); // '?' escaped: no trigraphs
    else e = '\\' + b.toString(8).padStart(3, '0');
    cur += e;
    n += e.length;
    if (n >= 100) { pieces.push(cur); cur = ''; n = 0; }
  }
  if (cur.length || pieces.length === 0) pieces.push(cur);
  return pieces.map((p) => `        "${p}"`).join('\n');
}

const resources = [];
for (const file of walk(srcDir)) {
  const rel = path.relative(srcDir, file);
  const dir = rel.split(path.sep)[0];
  const kind = KIND_BY_DIR[dir];
  if (!kind) continue;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const doc = compact(raw);
  const id = doc.$id;
  if (!id) throw new Error(`${rel}: no $id`);
  if (id === PROFILE) {
    doc.allOf = doc.allOf || [];
    if (!doc.allOf.some((r) => r.$ref === IDENTITYMAP)) doc.allOf.push({ $ref: IDENTITYMAP });
    doc['meta:extends'] = doc['meta:extends'] || [];
    if (!doc['meta:extends'].includes(IDENTITYMAP)) doc['meta:extends'].push(IDENTITYMAP);
  }
  const ordered = {
    $id: id,
    'meta:altId': altId(id),
    'meta:resourceType': kind,
    version: '1.0',
    ...doc,
    'meta:containerId': 'global',
  };
  resources.push({ id, kind, rel, json: JSON.stringify(ordered) });
}
resources.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

let c = `/*
 * xdm_std_data.c - GENERATED by tools/gen-xdm-std.mjs; do not edit by hand.
 *
 * The standard XDM resources of the Schema Registry's global container, one compact JSON string
 * per resource, sorted by $id. Derived from adobe/xdm (https://github.com/adobe/xdm), Copyright
 * Adobe Systems Incorporated, licensed under CC BY 4.0
 * (https://creativecommons.org/licenses/by/4.0/). Changes: descriptions, examples and
 * localisation keys removed; meta:altId, meta:resourceType, meta:containerId and version added;
 * the IdentityMap field group added to XDM Individual Profile, as AEP's registry has it.
 */
#include "schema/xdm_std.h"

const struct xdm_std_res xdm_std_data[] = {
`;
for (const r of resources) {
  c += `    /* ${r.rel} */\n    {"${r.id}", "${r.kind}",\n${cString(r.json)}},\n`;
}
c += `};

const size_t xdm_std_data_len = sizeof(xdm_std_data) / sizeof(xdm_std_data[0]);
`;
fs.writeFileSync(outFile, c);
console.log(`${outFile}: ${resources.length} resources, ${c.length} bytes`);
