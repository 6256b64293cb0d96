// luma.mjs - the Luma tutorial's building blocks shared by several suites: where the reference
// data lives (read in place, never copied into the repo), the custom field groups the tutorial
// builds in the UI (written here as Schema Registry request bodies), and the three schemas made
// the tutorial's way (class first, field groups patched in).
import fs from 'node:fs';
import path from 'node:path';
import { TENANT } from './server.mjs';
import { XDM, createFieldGroup, createSchema } from './aep.mjs';

// The workspace's shared/ folder sits beside the repository (../shared from the repo root).
export const LUMA_DIR = process.env.INGOT_LUMA_DIR ||
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../shared/reference/luma');
export const PLATFORM_UTILS_DIR = path.join(LUMA_DIR, 'platform-utils');
export const TENANT_KEY = `_${TENANT}`;

export function lumaPath(name) {
  return path.join(LUMA_DIR, name);
}

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// The identity object the tutorial adds under the tenant: systemIdentifier {loyaltyId, crmId}.
function systemIdentifierField() {
  return {
    type: 'object',
    title: 'System Identifier',
    'meta:xdmType': 'object',
    properties: {
      loyaltyId: { title: 'Loyalty Id', type: 'string', 'meta:xdmType': 'string' },
      crmId: { title: 'CRM Id', type: 'string', 'meta:xdmType': 'string' },
    },
  };
}

// A tenant field group holding `_<tenant>.systemIdentifier`, meant to extend `classRef`.
export function identityFieldGroupBody(title, description, classRef) {
  return {
    type: 'object',
    title,
    description,
    'meta:intendedToExtend': [classRef],
    definitions: {
      customFields: {
        properties: {
          [TENANT_KEY]: {
            type: 'object',
            properties: { systemIdentifier: systemIdentifierField() },
          },
        },
      },
    },
    allOf: [{ $ref: '#/definitions/customFields' }],
  };
}

export async function createLumaIdentityFieldGroups(c) {
  const profileFg = await createFieldGroup(c, identityFieldGroupBody('Luma Identity profile field group',
    'system identifiers for XDM Individual Profile class', XDM.profile));
  const eventFg = await createFieldGroup(c, identityFieldGroupBody('Luma Identity ExperienceEvent field group',
    'system identifiers for XDM ExperienceEvent class', XDM.experienceEvent));
  return { profileFg, eventFg };
}

export function createLoyaltySchema(c, profileFgId, title = 'Luma Loyalty Schema') {
  return createSchema(c, {
    title,
    description: 'Schema for loyalty program data of Luma Retail',
    classRef: XDM.profile,
    fieldGroups: [XDM.personDetails, XDM.personalDetails, XDM.loyaltyDetails, profileFgId],
  });
}

export function createCrmSchema(c, profileFgId) {
  return createSchema(c, {
    title: 'Luma CRM Schema',
    description: 'Schema for CRM data of Luma Retail ',
    classRef: XDM.profile,
    fieldGroups: [XDM.personalDetails, XDM.personDetails, profileFgId],
  });
}

export function createOfflinePurchaseSchema(c, eventFgId) {
  return createSchema(c, {
    title: 'Luma Offline Purchase Events Schema',
    description: 'Offline purchases of Luma Retail',
    classRef: XDM.experienceEvent,
    fieldGroups: [XDM.commerce, eventFgId],
  });
}

// The loyaltyId path used by identity descriptors.
export const LOYALTY_ID_PATH = `/${TENANT_KEY}/systemIdentifier/loyaltyId`;
export const CRM_ID_PATH = `/${TENANT_KEY}/systemIdentifier/crmId`;
