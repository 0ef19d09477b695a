package metrics

import "github.com/wispstack/wisp/stack"

// pageData is what the page is rendered from; the live parts come from /snapshot.json.
type pageData struct {
	Title  string
	Budget stack.Budget
	Cores  int
}

// pageHTML is the live view: no external assets, a few lines of JavaScript that fetch
// snapshot.json and diagnose?json=1 every second and fill the tables. Element ids name
// what they show (proto-TCP-Xmit, pool-TCP_PCB-Used, ...): the browser test reads them.
const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.warn{color:#a60}.error{color:#c00}.info{color:#06a}
small{color:#666}
</style></head>
<body>
<h1>{{.Title}}</h1>
<p><small>{{.Cores}} core(s); updated <span id="at">never</span> <span id="status"></span></small></p>

<h2>Doctor</h2>
<ul id="findings"><li>waiting for the first sample</li></ul>

<h2>Memory budget</h2>
<table id="budget"><tr><th>memory</th><th>count</th><th>size</th><th>bytes</th></tr>
{{range .Budget.Lines}}<tr><td>{{.Name}}</td><td>{{.Count}}</td><td>{{.Size}}</td><td id="budget-{{.Name}}">{{.Bytes}}</td></tr>
{{end}}<tr><th>TOTAL</th><td></td><td></td><th id="budget-total">{{.Budget.Total}}</th></tr></table>

<h2>Protocols</h2>
<table id="protos"></table>

<h2>Pools</h2>
<table id="pools"></table>

<h2>Timers and DNS</h2>
<table id="misc"></table>

<h2>Connections</h2>
<table id="conns"></table>

<script>
"use strict";
const protos=[["LINK","Link"],["ETHARP","Etharp"],["IP_FRAG","IPFrag"],["IP","IP"],["ICMP","ICMP"],["IGMP","IGMP"],["ND6","ND6"],["IP6_FRAG","IP6Frag"],["IPv6","IP6"],["ICMPv6","ICMP6"],["MLD","MLD6"],["UDP","UDP"],["TCP","TCP"]];
const pfields=["Xmit","Recv","Fw","Drop","Chkerr","Lenerr","Memerr","Rterr","Proterr","Opterr","Err","Cachehit"];
function esc(v){return String(v).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"})[c]);}
function row(cells,head,ids){return "<tr>"+cells.map((c,i)=>{const t=head?"th":"td";const id=ids&&ids[i]?' id="'+esc(ids[i])+'"':"";return "<"+t+id+">"+esc(c)+"</"+t+">";}).join("")+"</tr>";}
function ms(ns){return (ns/1e6).toFixed(1)+" ms";}
function fill(d){
  const s=d.Stats;
  let h=row(["proto"].concat(pfields.map(f=>f.toLowerCase())),true);
  for(const [name,key] of protos){const p=s[key];h+=row([name].concat(pfields.map(f=>p[f])),false,[""].concat(pfields.map(f=>"proto-"+name+"-"+f)));}
  document.getElementById("protos").innerHTML=h;
  h=row(["pool","used","max","avail","err"],true);
  const hp=s.Heap;
  h+=row(["MEM_HEAP (bytes)",hp.Used,hp.Max,hp.Avail,hp.Err],false,["","heap-Used","heap-Max","heap-Avail","heap-Err"]);
  for(const p of s.Pools||[]){h+=row([p.Name,p.Used,p.Max,p.Avail,p.Err],false,["","pool-"+p.Name+"-Used","pool-"+p.Name+"-Max","pool-"+p.Name+"-Avail","pool-"+p.Name+"-Err"]);}
  document.getElementById("pools").innerHTML=h;
  const dn=s.DNS||{};
  h=row(["counter","value"],true);
  for(const [k,v] of [["TimerWakeups",s.TimerWakeups],["TimerLate",s.TimerLate],["TimerMaxLate",ms(s.TimerMaxLate)],["DNS.Queries",dn.Queries],["DNS.Answers",dn.Answers],["DNS.Failures",dn.Failures],["DNS.Servers",dn.Servers]]){h+=row([k,v],false,["","misc-"+k]);}
  document.getElementById("misc").innerHTML=h;
  const cs=d.Conns||[];
  h=row(["proto","state","local","remote","snd queued","rcv queued","pbufs","heap","rtt","cwnd","snd wnd","rcv wnd","rtx"],true);
  for(const c of cs){h+=row([c.Proto,c.State,c.Local,c.Remote,c.SndQueued,c.RcvQueued,c.Pbufs,c.Heap,ms(c.RTT),c.Cwnd,c.SndWnd,c.RcvWnd,c.Retransmits]);}
  document.getElementById("conns").innerHTML=h+'<tr><td colspan="13" id="conns-count">'+cs.length+' connection(s)</td></tr>';
  document.getElementById("at").textContent=d.At;
}
function findings(fs){
  const ul=document.getElementById("findings");
  if(!fs||fs.length===0){ul.innerHTML='<li id="healthy">no findings: the stack looks healthy</li>';return;}
  ul.innerHTML=fs.map(f=>'<li class="'+esc(f.Severity)+'"><b>'+esc(f.Title)+"</b> "+esc(f.Detail)+(f.Option?" <i>set "+esc(f.Option)+" = "+esc(f.Value)+"</i>":"")+"</li>").join("");
}
async function tick(){
  try{
    const [a,b]=await Promise.all([fetch("snapshot.json",{cache:"no-store"}),fetch("diagnose?json=1",{cache:"no-store"})]);
    if(!a.ok)throw new Error("snapshot.json: "+a.status);
    fill(await a.json());
    if(b.ok)findings(await b.json());
    document.getElementById("status").textContent="";
  }catch(e){document.getElementById("status").textContent="("+e+")";}
  setTimeout(tick,1000);
}
tick();
</script>
</body></html>
`
