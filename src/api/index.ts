/**
 * API v1's shapes, one TypeBox schema each: the server validates and serializes with them and builds its
 * OpenAPI document from them; the web client takes its types from them (`import type`, so its bundle holds
 * no TypeBox). Pure: no Node imports.
 */
import { Account, AuditEntry } from './accounts.js';
import { Box, Case, Cell, FileError, Review } from './cases.js';
import { Differential, Domain } from './predict.js';
import { ErrorReply } from './service.js';
import { Specimen, SpecimenCell } from './specimens.js';

export * from './accounts.js';
export * from './constants.js';
export * from './exports.js';
export * from './cases.js';
export * from './predict.js';
export * from './service.js';
export * from './specimens.js';
export * from './teaching.js';

/** Registered by $id on the server and referenced as `<id>#`; each is a component of the OpenAPI document. */
export const sharedSchemas = [
  ErrorReply,
  Box,
  Cell,
  Review,
  Case,
  FileError,
  Domain,
  Differential,
  Specimen,
  SpecimenCell,
  Account,
  AuditEntry,
];
export * from './models.js';
