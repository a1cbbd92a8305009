// A worker thread for thread-priority.test.ts: lowers its own priority, then reports its thread id and nice.
import { readlinkSync } from 'node:fs';
import { getPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../thread-priority.js';

const lowered = await lowerThreadPriority(workerData as number);
// /proc/thread-self links to <pid>/task/<tid>.
const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
parentPort!.postMessage({ lowered, tid, nice: getPriority(0) });
