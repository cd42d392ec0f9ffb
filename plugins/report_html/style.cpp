// The page's inline stylesheet and script (no external resources: the report opens offline).
#include "report_model.hpp"

namespace saelab::report {

const char* const kStyle = R"CSS(
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d2430;--muted:#6b7585;--line:#e3e6eb;--accent:#d9480f;
--pos:#2166ac;--neg:#b2182b;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:#1d2430;color:#e9edf3;padding:18px 28px 0}
header.top .brand{font:600 12px var(--mono);letter-spacing:.12em;text-transform:uppercase;color:#f59f00}
header.top h1{margin:4px 0 6px;font-size:22px;font-weight:600}
header.top .sub{display:flex;flex-wrap:wrap;gap:6px 22px;color:#aeb8c6;font-size:13px}
header.top .sub b{color:#fff;font-weight:600}
header.top nav{display:flex;gap:4px;margin-top:14px}
header.top nav a{color:#cfd6e0;text-decoration:none;padding:7px 12px;border-radius:6px 6px 0 0;font-size:13px}
header.top nav a:hover{background:var(--bg);color:var(--ink)}
main{max-width:1320px;margin:0 auto;padding:20px 24px 40px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:16px 0 6px}
.muted{color:var(--muted)}.small{font-size:12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin:6px 0 12px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fafbfc}
.tile .tv{font:600 22px var(--mono)}.tile .tl{font-weight:600;margin-top:2px}
.tile .th{color:var(--muted);font-size:12px}
details>summary{cursor:pointer;color:var(--ink);font-weight:500;padding:4px 0}
table{border-collapse:collapse}
table.kv{margin:4px 0 4px 6px;font-size:13px}
table.kv th{text-align:left;font-weight:500;color:var(--muted);padding:2px 14px 2px 0;vertical-align:top}
table.kv td{padding:2px 0;font-family:var(--mono)}
table.index{width:100%;font-size:13px;margin-top:8px}
table.index th{text-align:left;color:var(--muted);font-weight:500;border-bottom:1px solid var(--line);padding:5px 8px}
table.index td{border-bottom:1px solid #f0f2f5;padding:4px 8px}
table.index tr:hover td{background:#fff7ed}
td.num{text-align:right;font-family:var(--mono)}
table.index th.num{text-align:right}
a{color:#1c64c8}
#filter{width:280px;padding:6px 10px;border:1px solid var(--line);border-radius:6px;font:inherit}
.lhead{display:flex;align-items:center;flex-wrap:wrap;gap:8px;border-bottom:1px solid var(--line);
padding-bottom:10px}
.lhead h2{margin:0 8px 0 0}.lhead .id{font-family:var(--mono);color:var(--accent)}
.pill{background:#f1f3f6;border-radius:999px;padding:2px 10px;font-size:12px;color:#3a4352}
.pill.dead{background:#fde8e8;color:#9b1c1c}
.back{margin-left:auto;font-size:12px;text-decoration:none}
.lgrid{display:grid;grid-template-columns:460px minmax(0,1fr);gap:24px}
@media (max-width:1000px){.lgrid{grid-template-columns:1fr}}
svg.chart{display:block;max-width:100%;height:auto}
svg .grid{stroke:#eef0f3}svg .axis{stroke:#9aa4b2}
svg .tick{font:10px var(--mono);fill:#6b7585}svg .label{font:11px system-ui,sans-serif;fill:#4b5563}
svg rect:hover{opacity:.75}
.logit-tables{display:grid;grid-template-columns:1fr 1fr;gap:12px}
table.logits{width:100%;font-size:12.5px}
table.logits th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.05em;padding:2px 4px}
table.logits td{padding:1px 4px}
table.logits.neg th,table.logits.neg td.num{color:var(--neg)}
table.logits.pos th,table.logits.pos td.num{color:var(--pos)}
code.tok{font:12.5px var(--mono);background:#f1f3f6;border-radius:3px;padding:0 3px;white-space:pre}
.ex{display:flex;align-items:baseline;gap:10px;padding:3px 0;border-bottom:1px dashed #eef0f3}
.ex .val{flex:0 0 64px;text-align:right;font:600 12px var(--mono);color:var(--accent)}
.ex .ctx{flex:1 1 auto;font:13px/1.9 var(--mono);white-space:nowrap;overflow-x:auto}
.ex .where{flex:0 0 auto;font-size:11px;color:#a0a8b4}
.t{white-space:pre;border-radius:2px;padding:1px 0;box-shadow:inset -1px 0 0 rgba(29,36,48,.07)}
.t:hover{outline:1px solid #555}
.t.c{font-weight:700;text-decoration:underline;text-decoration-color:var(--accent);text-underline-offset:3px}
.t.x{color:#9aa4b2;background:repeating-linear-gradient(135deg,#f3f4f6 0 3px,#fff 3px 6px)}
.t.u,.more{color:#b5bcc7}
.ws{color:#9aa4b2}
details.band{border-top:1px solid #f0f2f5;padding:2px 0}
footer{max-width:1320px;margin:0 auto;padding:0 24px 30px;color:var(--muted);font-size:12px}
)CSS";

// Filters the latent index as the reader types; reads text content only, never writes markup.
const char* const kScript = R"JS(
(function(){var f=document.getElementById('filter');if(!f)return;
var rows=document.querySelectorAll('table.index tbody tr');
f.addEventListener('input',function(){var q=f.value.trim().toLowerCase();
for(var i=0;i<rows.length;i++){var r=rows[i];
r.style.display=(!q||r.textContent.toLowerCase().indexOf(q)>=0)?'':'none';}});})();
)JS";

}  // namespace saelab::report
