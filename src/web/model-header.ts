/**
 * What the header says of the model: the server's while the server answers, else the device's own copy when
 * "analyse on this device" runs it (offline, the page still analyses: saying "unavailable" would be false).
 */
import type { Health } from './api.js';

export type ModelState = 'ok' | 'degraded' | 'down' | 'loading' | 'device';

export interface ModelHeader {
  text: string;
  title: string;
  state: ModelState;
}

/** The parts of a model card the header names. */
export interface ModelName {
  name: string;
  version: string;
  classes: string[];
}

/**
 * `device`: undefined when device mode is off; 'loading' while its model starts; null when it failed; the
 * card once it runs.
 */
export function modelHeader(server: Health | null, device?: ModelName | 'loading' | null): ModelHeader {
  if (server)
    return {
      text: `Model: ${server.model.name} ${server.model.version}`,
      title: `Classes: ${server.model.classes.join(', ')}`,
      state: server.status === 'ok' ? 'ok' : 'degraded',
    };
  if (device === 'loading')
    return {
      text: 'Model: starting on this device…',
      title: 'The server cannot be reached; the model kept in this browser is starting.',
      state: 'loading',
    };
  if (device)
    return {
      text: `Model: ${device.name} ${device.version} (on this device)`,
      title:
        'The server cannot be reached: images are analysed in this browser with its copy of the model, and ' +
        `nothing is stored. Classes: ${device.classes.join(', ')}`,
      state: 'device',
    };
  return { text: 'Model: unavailable', title: 'The server cannot be reached.', state: 'down' };
}
