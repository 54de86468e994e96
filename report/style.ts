/** The report's stylesheet (inlined in the page; system fonts only, nothing fetched). */
export const REPORT_CSS = `
:root { --fg: #1d2125; --muted: #5f6b76; --line: #dde2e6; --bg: #ffffff; --panel: #f6f8f9; --accent: #0072B2; --warn: #9a5b00; --bad: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: var(--bg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
header.page { padding: 28px 32px 18px; border-bottom: 1px solid var(--line); background: var(--panel); }
header.page h1 { margin: 0 0 4px; font-size: 26px; }
header.page p { margin: 2px 0; color: var(--muted); }
.layout { display: grid; grid-template-columns: 220px minmax(0, 1fr); gap: 32px; max-width: 1320px; margin: 0 auto; padding: 0 32px 64px; }
nav.toc { position: sticky; top: 0; align-self: start; padding: 20px 0; font-size: 14px; max-height: 100vh; overflow: auto; }
nav.toc h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
nav.toc ol { margin: 0; padding-left: 28px; } /* room for two-digit markers ("10.") inside the scrolling nav */
nav.toc li { margin: 3px 0; }
nav.toc ol ol { padding-left: 16px; font-size: 13px; }
nav.toc a { color: var(--fg); text-decoration: none; }
nav.toc a:hover { color: var(--accent); text-decoration: underline; }
nav.toc .state-missing a { color: var(--muted); }
main { min-width: 0; }
section.section { padding: 22px 0 10px; border-bottom: 1px solid var(--line); }
section.section:last-child { border-bottom: 0; }
h2 { font-size: 21px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 20px 0 8px; }
p.lead { color: var(--muted); margin-top: 0; max-width: 80ch; }
p.missing { padding: 10px 14px; background: #fff7e6; border-left: 4px solid #e69f00; color: var(--warn); margin: 8px 0; }
p.missing code, p.error code { color: inherit; }
p.error { padding: 10px 14px; background: #fdecea; border-left: 4px solid var(--bad); color: var(--bad); margin: 8px 0; }
p.note { padding: 8px 14px; background: var(--panel); border-left: 4px solid #b9c2c9; color: var(--muted); margin: 8px 0; }
p.check-ok { color: #1e6b3a; }
p.check-bad { color: var(--bad); font-weight: 600; }
code, pre { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
code { background: var(--panel); padding: 1px 4px; border-radius: 3px; }
pre { background: var(--panel); padding: 12px 14px; border-radius: 4px; overflow: auto; max-height: 420px; border: 1px solid var(--line); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #b9c2c9; font-weight: 600; vertical-align: bottom; }
table.funnel thead th { max-width: 7.5em; white-space: normal; }
tbody tr:nth-child(even) { background: #fafbfc; }
tfoot td, tfoot th { border-top: 2px solid #b9c2c9; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.na { color: var(--muted); text-align: center; }
tr.reference td { color: var(--muted); font-style: italic; }
.table-wrap { overflow-x: auto; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 6px 0 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
svg.chart { display: block; max-width: 100%; height: auto; background: #fff; }
svg.chart text { font-size: 11px; fill: #333; }
svg.chart text.label { font-size: 12px; fill: #222; }
svg.chart text.legend { font-size: 12px; }
svg.chart text.note { font-size: 11px; fill: #555; }
svg.chart text.cm-count { font-size: 12px; font-weight: 600; fill: #111; }
svg.chart text.cm-count.dark { fill: #fff; }
svg.chart text.chance { fill: #D55E00; }
svg.chart .grid { stroke: #e6e9ec; stroke-width: 1; }
svg.chart .axis { stroke: #555; stroke-width: 1; }
.sheet { margin: 10px 0 18px; }
.sheet h3 { margin-bottom: 6px; }
.sheet h3 small { color: var(--muted); font-weight: normal; }
.thumbs { display: grid; grid-template-columns: repeat(auto-fill, 96px); gap: 4px; }
.thumbs img { width: 96px; height: 96px; display: block; background: #eee; }
figure.mean { margin: 8px 0; display: inline-block; }
figure.mean img { width: 256px; height: 256px; display: block; border: 1px solid var(--line); }
figure.mean.pixelated img { image-rendering: pixelated; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; max-width: 256px; }
dl.kv { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 4px 16px; margin: 8px 0 14px; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: baseline; }
footer.page { max-width: 1320px; margin: 0 auto; padding: 12px 32px 40px; color: var(--muted); font-size: 13px; }
@media (max-width: 860px) { .layout { grid-template-columns: 1fr; } nav.toc { position: static; max-height: none; } }
@media print { nav.toc { display: none; } .layout { display: block; } }
`;
