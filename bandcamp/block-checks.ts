/**
 * Block checks for `PoliteClient.request({ blockCheck })` (bandcamp/client.ts): whether an answer is a block page
 * (docs/BANDCAMP.md#blocking: Bandcamp's challenge and stripped pages) rather than what was asked for. Shared by the stages that
 * call Bandcamp's JSON APIs (`discover`, `label`).
 */
import type { HttpResult } from './client.ts';
import { detectBlocked } from './parse.ts';

/**
 * What a JSON API answer looks like when it is a block page instead.
 * @returns null for a JSON body; `challenge` for a challenge page; `non-JSON` for anything else.
 */
export function jsonBlockCheck(res: HttpResult): string | null {
  const text = res.body.toString('utf8');
  try {
    JSON.parse(text);
    return null;
  } catch {
    const kind = detectBlocked(res.status, text);
    return kind === 'challenge' ? 'challenge' : 'non-JSON';
  }
}
