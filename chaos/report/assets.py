"""The page's inline style and script. Constant text: no value of a record ever goes in
here, so nothing from a history can reach the script. No font, image or script is
loaded from anywhere; the page works offline and without the script (tooltips then come
from the SVG `<title>`s, and the charts do not zoom).
"""

from __future__ import annotations

from typing import Final

from chaos.report.svg import PLOT_W, TICK_LEVELS

FONT: Final = 'system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Helvetica,Arial,sans-serif'
MONO: Final = 'ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace'

STYLE: Final = (
    """
:root{--ok:#16a34a;--fail:#ea580c;--info:#9ca3af;--hl:#c026d3;--ink:#0f172a;--muted:#64748b;
--line:#e2e8f0;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 FONT;color:var(--ink);background:var(--bg)}
main{max-width:1320px;margin:0 auto;padding:22px 24px 56px}
a{color:#7e22ce}
code{font-family:MONO;font-size:12.5px}
header.top{display:flex;gap:20px;align-items:center}
.verdict{font-weight:800;font-size:26px;letter-spacing:.05em;padding:10px 20px;border-radius:12px;
color:#fff;display:flex;flex-direction:column;align-items:center;min-width:190px;
box-shadow:0 1px 2px rgba(0,0,0,.15)}
.verdict .found{font-size:12px;font-weight:500;letter-spacing:0;opacity:.92}
.v-ok{background:#15803d}.v-violation{background:#b91c1c}.v-unknown{background:#b45309}.v-vacuous{background:#6b21a8}
h1{margin:0;font-size:22px;font-weight:700}.seed{color:var(--muted);font-weight:600}
.facts{margin:4px 0 0;color:#334155}.facts.settings{font-size:12px;color:#64748b}
.cmds{margin:18px 0 14px;display:grid;gap:6px}
.cmd{display:flex;align-items:stretch;background:#0f172a;border-radius:8px;overflow:hidden}
.cmdname{background:#1e293b;color:#94a3b8;padding:8px 12px;font-size:11px;text-transform:uppercase;
letter-spacing:.08em;min-width:74px;display:flex;align-items:center}
.cmd code{flex:1;color:#e2e8f0;padding:8px 12px;white-space:pre-wrap;word-break:break-all}
.copy{border:0;background:#334155;color:#e2e8f0;padding:0 16px;cursor:pointer;font:12px FONT}
.copy:hover{background:#475569}
.cards{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1.3fr) minmax(0,1.3fr);gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.card h3,.chartbox h3{margin:0 0 6px;font-size:11px;text-transform:uppercase;letter-spacing:.08em;
color:var(--muted)}
.crow{display:flex;flex-wrap:wrap;gap:4px 12px;padding:3px 0;border-top:1px solid #f1f5f9}
.crow:first-of-type{border-top:0}
.cgroup{min-width:70px;color:var(--muted);font-size:12px}
.cnt{font-size:13px;overflow-wrap:anywhere}.cnt b{font-variant-numeric:tabular-nums}
ul.plain{list-style:none;margin:0;padding:0}ul.plain li{margin:3px 0}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:11px;font-weight:700;
color:#fff;text-transform:uppercase;letter-spacing:.04em}
.pill.kind{background:var(--hl);font-size:12px}
table.kv{border-collapse:collapse;font-size:13px}table.kv th{text-align:left;color:var(--muted);
font-weight:500;padding:2px 12px 2px 0;white-space:nowrap}table.kv td{word-break:break-all}
.muted{color:var(--muted)}
section>h2{font-size:16px;margin:28px 0 8px}
.chartbox{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 8px 6px;
overflow-x:auto}
.zoombar{display:flex;gap:8px;align-items:center;font-size:12px;margin:0 0 6px 4px;color:#334155}
.zoombar button{border:1px solid #cbd5e1;background:#fff;border-radius:6px;padding:2px 10px;
cursor:pointer;font:12px FONT}
.zoombar button:hover{background:#f1f5f9}
.zstate{font-weight:600;color:var(--hl)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:#334155;margin:6px 4px 2px}
.sw{display:inline-block;width:16px;height:11px;border-radius:2px;vertical-align:-1px;margin-right:5px}
.sw.crashed{background:repeating-linear-gradient(45deg,#991b1b 0 2px,#fee2e2 2px 5px)}
.sw.paused{background:repeating-linear-gradient(-45deg,#475569 0 2px,#e2e8f0 2px 5px)}
.sw.isolated{background:repeating-linear-gradient(0deg,#7e22ce 0 1.5px,transparent 1.5px 5px),
repeating-linear-gradient(90deg,#7e22ce 0 1.5px,#f3e8ff 1.5px 5px)}
.sw.hl{background:#16a34a;box-shadow:0 0 0 2px var(--hl),0 0 0 5px #f5d0fe}
.sw.tail{height:3px;vertical-align:3px;background:#cbd5e1}
.sw.p50{height:2px;vertical-align:4px;background:#0f172a}
.sw.p99{height:0;vertical-align:4px;border-top:2px dashed #0f172a;border-radius:0}
.sw.dot{width:9px;height:9px;border-radius:50%}
svg{display:block}
svg text{font-family:FONT;font-size:11px}
.sect{font-weight:700;fill:#475569;font-size:10.5px;letter-spacing:.08em;text-transform:uppercase}
.row{text-anchor:end;fill:#1e293b;font-size:12px;font-weight:500}
.lanel{text-anchor:end;fill:#64748b;font-size:10px}
.grid{stroke:#e5e7eb;stroke-width:1;vector-effect:non-scaling-stroke}
.tk1,.tk2{display:none}.z1 .tk1,.z2 .tk1,.z2 .tk2{display:inline}
.tick{fill:#64748b;font-size:10px}
.drag{fill:transparent;cursor:crosshair}
.lane{fill:#f8fafc}
.r-leader{fill:#2563eb}.r-follower{fill:#cbd5e1}.r-candidate{fill:#f59e0b}
.tl{fill:#fff;font-size:10px;font-weight:700;pointer-events:none}
.c-crashed{fill:url(#h-crashed)}.c-paused{fill:url(#h-paused)}.c-isolated{fill:url(#h-isolated)}
.c-crashed,.c-paused,.c-isolated{opacity:.93}
.cl{fill:#111827;font-size:10px;font-weight:700;pointer-events:none;paint-order:stroke;
stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.side0{fill:#fecdd3}.side1{fill:#bfdbfe}.side2{fill:#bbf7d0}.side3{fill:#fde68a}
.fl{fill:#fff;font-size:10px;font-weight:600;pointer-events:none}
.k-partition{fill:#e11d48}.k-kill{fill:#1f2937}.k-pause{fill:#64748b}.k-clock-skew{fill:#9333ea}
.k-loss{fill:#0284c7}.k-duplicate{fill:#0d9488}.k-reorder{fill:#4f46e5}.k-slow-link{fill:#ea580c}
.k-membership{fill:#65a30d}.k-link-cut{fill:#f472b6}.k-truncate{fill:#ca8a04}.k-disk{fill:#92400e}
.k-other{fill:#78716c}
.o-ok{fill:var(--ok)}.o-fail{fill:var(--fail)}.o-info{fill:var(--info)}
.tail{fill:#e5e7eb}
.halo{fill:#f5d0fe;stroke:#f5d0fe;stroke-width:8;stroke-linejoin:round;
vector-effect:non-scaling-stroke}.halo.blk{fill:#e879f9;stroke:#e879f9}
.op.hl,.op.blk{stroke:var(--hl);stroke-width:1.5;vector-effect:non-scaling-stroke}
.vline{stroke:var(--hl);stroke-width:1.5;stroke-dasharray:5 3;vector-effect:non-scaling-stroke}
.vflagbox{fill:var(--hl)}.vflagt{fill:#fff;font-size:10px;font-weight:700}
.vnode{fill:var(--hl);stroke:#fff;stroke-width:1.5}
.pt{fill:none;stroke-width:5;stroke-linecap:round;vector-effect:non-scaling-stroke}
.pt.o-ok{fill:none;stroke:var(--ok)}.pt.o-fail{fill:none;stroke:var(--fail)}
.ring{fill:none;stroke:var(--hl);stroke-width:13;stroke-linecap:round;opacity:.5;
vector-effect:non-scaling-stroke}
.ptick{stroke:var(--info);stroke-width:1.5;vector-effect:non-scaling-stroke}
.p50,.p99{fill:none;stroke:#0f172a;stroke-width:1.6;vector-effect:non-scaling-stroke;
stroke-linejoin:round}
.p99{stroke-dasharray:6 4}
.sel{fill:rgba(192,38,211,.12);stroke:var(--hl);vector-effect:non-scaling-stroke}
#tip{position:fixed;pointer-events:none;background:#0f172a;color:#f8fafc;padding:6px 9px;
border-radius:6px;font-size:12px;max-width:560px;display:none;z-index:10;
box-shadow:0 4px 14px rgba(0,0,0,.25)}
.violation{background:#fff;border:1px solid #f5d0fe;border-left:5px solid var(--hl);
border-radius:10px;padding:10px 16px;margin:0 0 12px}
.violation h3{margin:2px 0 6px;font-size:14px;font-weight:600}
.violation h3 .pill{margin-right:8px}
.msg{margin:4px 0 8px;font-weight:500}
.witness p{margin:6px 0}
ul.ops{margin:4px 0 8px;padding-left:22px}ul.ops li{margin:2px 0}
ul.ops li.blocked{font-weight:600}
.opref{font-family:MONO;font-size:12px;text-decoration:none;font-weight:700}
blockquote{margin:8px 0 2px;padding:4px 10px;border-left:3px solid var(--line);font-size:12.5px}
details summary{cursor:pointer;color:#334155;margin:4px 0}
table.data{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);
font-size:13px}
table.data th{text-align:left;background:#f1f5f9;color:#334155;font-weight:600;padding:6px 10px}
table.data td{padding:5px 10px;border-top:1px solid #f1f5f9;vertical-align:top}
table.data tr:hover td{background:#fafafa}
footer{margin-top:36px;color:var(--muted);font-size:12px}
:target{animation:flash 1.6s ease-out}
rect:target{stroke:var(--hl);stroke-width:3;vector-effect:non-scaling-stroke}
@keyframes flash{from{outline:3px solid var(--hl)}to{outline:3px solid transparent}}
""".replace("FONT", FONT)
    .replace("MONO", MONO)
    .strip()
)

# Zoom: narrowing every `svg.zoom` viewBox to one time window [a, a + w] (the same in
# both charts); text and marks with `data-z` are scaled back so they keep their size.
SCRIPT: Final = (
    """
(function(){
"use strict";
var W=PLOT_W,Z1=LEVEL1,Z2=LEVEL2;
var tip=document.getElementById("tip");
Array.prototype.forEach.call(document.querySelectorAll("svg title"),function(t){
  var p=t.parentNode;p.setAttribute("data-tip",t.textContent);p.removeChild(t);});
var dragging=null;
document.addEventListener("mousemove",function(e){
  var el=e.target&&e.target.closest?e.target.closest("[data-tip]"):null;
  if(!el||dragging){tip.style.display="none";return;}
  tip.textContent=el.getAttribute("data-tip");tip.style.display="block";
  var r=tip.getBoundingClientRect(),x=e.clientX+14,y=e.clientY+16;
  if(x+r.width>window.innerWidth-8){x=e.clientX-r.width-14;}
  if(y+r.height>window.innerHeight-8){y=e.clientY-r.height-16;}
  tip.style.left=Math.max(4,x)+"px";tip.style.top=Math.max(4,y)+"px";});
function selectText(el){var r=document.createRange();r.selectNodeContents(el);
  var s=window.getSelection();s.removeAllRanges();s.addRange(r);}
Array.prototype.forEach.call(document.querySelectorAll("button.copy"),function(b){
  b.addEventListener("click",function(){
    var code=document.getElementById(b.getAttribute("data-copy"));
    var done=function(){b.textContent="copied";setTimeout(function(){b.textContent="copy";},1200);};
    if(navigator.clipboard&&navigator.clipboard.writeText){
      navigator.clipboard.writeText(code.textContent).then(done,function(){selectText(code);});
    }else{selectText(code);}});});
var plots=Array.prototype.slice.call(document.querySelectorAll("svg.zoom"));
var state=document.querySelector(".zstate");
var endMs=plots.length?+plots[0].getAttribute("data-end-ms"):0;
var view=[0,W];
function fmt(px){var t=px/W*endMs;return t>=10000?(t/1000).toFixed(2)+" s":t.toFixed(0)+" ms";}
function apply(){
  var a=view[0],w=view[1]-view[0],k=W/w;
  plots.forEach(function(p){
    p.setAttribute("viewBox",a+" 0 "+w+" "+p.getAttribute("height"));
    var root=p.ownerSVGElement;root.classList.toggle("z1",k>=Z1);root.classList.toggle("z2",k>=Z2);
    Array.prototype.forEach.call(p.querySelectorAll("[data-z]"),function(t){
      var x=+(t.getAttribute("data-x")||t.getAttribute("x"));
      t.setAttribute("transform",
        "translate("+x+" 0) scale("+(1/k)+" 1) translate("+(-x)+" 0)");});});
  if(state){state.textContent=k>1.001?"\\u00d7"+k.toFixed(1)+": "+fmt(a)+" \\u2013 "+fmt(a+w):"";}}
function at(p,e){var r=p.getBoundingClientRect();
  return view[0]+(e.clientX-r.left)/r.width*(view[1]-view[0]);}
plots.forEach(function(p){
  p.addEventListener("mousedown",function(e){
    if(e.button!==0){return;}e.preventDefault();
    var sel=document.createElementNS(p.namespaceURI,"rect");
    sel.setAttribute("class","sel");sel.setAttribute("y","0");
    sel.setAttribute("height",p.getAttribute("height"));p.appendChild(sel);
    dragging={p:p,x0:at(p,e),sel:sel};});
  p.addEventListener("dblclick",function(){view=[0,W];apply();});});
document.addEventListener("mousemove",function(e){if(!dragging){return;}
  var x=at(dragging.p,e),a=Math.min(x,dragging.x0),b=Math.max(x,dragging.x0);
  dragging.sel.setAttribute("x",a);dragging.sel.setAttribute("width",b-a);});
document.addEventListener("mouseup",function(e){if(!dragging){return;}
  var x=at(dragging.p,e),a=Math.max(0,Math.min(x,dragging.x0));
  var b=Math.min(W,Math.max(x,dragging.x0));
  dragging.sel.parentNode.removeChild(dragging.sel);dragging=null;
  if(b-a>(view[1]-view[0])/300&&b-a>W/20000){view=[a,b];apply();}});
function zoomBy(f){var c=(view[0]+view[1])/2,w=Math.min(W,(view[1]-view[0])*f);
  var a=Math.max(0,Math.min(W-w,c-w/2));view=[a,a+w];apply();}
var m=/^#t=([0-9.]+)-([0-9.]+)$/.exec(window.location.hash);
if(m&&endMs>0&&+m[2]>+m[1]){view=[Math.max(0,+m[1]/endMs*W),Math.min(W,+m[2]/endMs*W)];apply();}
Array.prototype.forEach.call(document.querySelectorAll("[data-zoom]"),function(b){
  b.addEventListener("click",function(){var z=b.getAttribute("data-zoom");
    if(z==="in"){zoomBy(0.5);}else if(z==="out"){zoomBy(2);}else{view=[0,W];apply();}});});
})();
""".replace("PLOT_W", repr(PLOT_W))
    .replace("LEVEL1", str(TICK_LEVELS[1][1]))
    .replace("LEVEL2", str(TICK_LEVELS[2][1]))
    .strip()
)
