/** Whether a command-line tool the tests shell out to (pdftoppm, pdftotext…) is installed. */
import { execFileSync } from 'node:child_process';

/** True when `tool -v` runs: the poppler tools print their version for it, and exit 0. */
export function hasTool(tool: string): boolean {
  try {
    execFileSync(tool, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
