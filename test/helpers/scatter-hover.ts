/**
 * What the report's embedding scatters promise a reader (report/inspect.ts): hovering a point shows its cover. Used
 * by the Chromium tests of the demo's report and of the pretrained features' scatter.
 */
import type { Locator } from 'playwright-core';

/**
 * Hovers `point` (a `.pt` of a scatter) and decodes the thumbnail its `.tip` shows, a JPEG data URI set as the tip's
 * background image.
 * @returns `ok` when the tip is visible and its image decodes to a non-empty picture; otherwise what went wrong
 *   (`hidden`, `no data URI`, `empty`).
 */
export async function hoverThumbnail(point: Locator): Promise<string> {
  await point.hover();
  const tip = point.locator('.tip');
  if (!(await tip.isVisible())) return 'hidden';
  return tip.evaluate(async (el) => {
    const src = /^url\("(data:image\/jpeg;base64,[^"]+)"\)$/.exec(getComputedStyle(el).backgroundImage)?.[1];
    if (!src) return 'no data URI';
    const img = new Image();
    img.src = src;
    await img.decode();
    return img.naturalWidth > 0 ? 'ok' : 'empty';
  });
}
