/* ui.js -- the dashboard's script: polls /v1/stats (and GET
 * /v1/namespaces/{name} for each namespace it lists) every few seconds,
 * keeps its own ring of samples and plots their deltas with uPlot, or fills
 * tables when uPlot is absent. The API token, when the server wants one, is
 * asked for once and kept in sessionStorage; it never goes into a URL.
 * Every field is read defensively: older and newer servers differ. */
(function () {
  'use strict';

  var RING = 300;            /* samples kept (10 min at 2 s) */
  var MAX_NAMESPACES = 24;   /* namespaces fetched per poll */
  var TOKEN_KEY = 'semcached.token';
  var COLORS = {exact: '#2a7de1', semantic: '#e6a700', miss: '#c8323c', hit: '#2e9e5b',
                near: '#8a63d2', embed: '#e6a700', write: '#2a7de1', conns: '#555555'};

  var $ = function (id) { return document.getElementById(id); };
  var hasPlot = typeof window.uPlot === 'function';
  var ring = [];             /* {t, exact, semantic, miss, embedq, writeq, conns} */
  var charts = {};
  var timer = null;
  var lastSim = null;

  /* ---- small helpers ---------------------------------------------------- */

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function get(o, path) {
    for (var i = 0; i < path.length; i++) {
      if (o === null || typeof o !== 'object') return undefined;
      o = o[path[i]];
    }
    return o;
  }
  function fmtInt(v) { return v === null || v === undefined ? '-' : Math.round(v).toLocaleString('en-US'); }
  function fmtPct(v, digits) { return num(v) === null ? '-' : (100 * v).toFixed(digits === undefined ? 1 : digits) + ' %'; }
  function fmtNum(v, digits) { return num(v) === null ? '-' : v.toFixed(digits); }
  function setText(id, text) { var e = $(id); if (e) e.textContent = text; }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function status(text, bad) {
    var e = $('status');
    e.textContent = text;
    e.className = 'status' + (bad ? ' bad' : '');
  }

  /* Dollars saved when the server reports them (a field named like
   * cost_saved / saved_usd / dollars_saved, a number or {total: n}), else null. */
  function dollarsSaved(stats) {
    var keys = Object.keys(stats || {});
    for (var i = 0; i < keys.length; i++) {
      var k = keys[i];
      if (!/(cost|usd|dollar)/i.test(k) || !/sav/i.test(k)) continue;
      var v = stats[k];
      if (num(v) !== null) return v;
      if (v && typeof v === 'object') {
        if (num(v.total) !== null) return v.total;
        var sum = 0, any = false;
        Object.keys(v).forEach(function (kk) { if (num(v[kk]) !== null) { sum += v[kk]; any = true; } });
        if (any) return sum;
      }
    }
    return null;
  }

  /* ---- fetching --------------------------------------------------------- */

  function authHeaders() {
    var t = sessionStorage.getItem(TOKEN_KEY);
    return t ? {Authorization: 'Bearer ' + t} : {};
  }

  function getJSON(path) {
    return fetch(path, {headers: authHeaders(), cache: 'no-store', credentials: 'omit'})
      .then(function (r) {
        if (r.status === 401) { var e = new Error('unauthorized'); e.status = 401; throw e; }
        if (!r.ok) { var e2 = new Error(path + ' answered ' + r.status); e2.status = r.status; throw e2; }
        return r.json();
      });
  }

  function askToken(message) {
    stop();
    $('auth').hidden = false;
    $('auth-error').textContent = message || '';
    status('needs the API token', true);
    $('token').focus();
  }

  /* ---- one poll --------------------------------------------------------- */

  function namespaceNames(stats) {
    var names = {};
    Object.keys(stats.lookups_by_namespace || {}).forEach(function (n) { names[n] = 1; });
    Object.keys(get(stats, ['quality', 'namespaces']) || {}).forEach(function (n) { names[n] = 1; });
    return Object.keys(names).filter(function (n) { return n !== '_other'; }).sort()
      .slice(0, MAX_NAMESPACES);
  }

  function poll() {
    getJSON('/v1/stats').then(function (stats) {
      var names = namespaceNames(stats);
      return Promise.all(names.map(function (n) {
        return getJSON('/v1/namespaces/' + encodeURIComponent(n)).catch(function (e) {
          if (e.status === 401) throw e;
          return null;                 /* one namespace failing leaves the rest */
        });
      })).then(function (details) {
        $('auth').hidden = true;
        $('forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
        update(stats, names, details);
        status('updated ' + new Date().toLocaleTimeString('en-GB') + ', up ' +
               fmtInt(num(stats.uptime_s)) + ' s');
      });
    }).catch(function (e) {
      if (e.status === 401) {
        askToken(sessionStorage.getItem(TOKEN_KEY) ? 'that token was refused' : '');
        return;
      }
      status('cannot reach the server: ' + e.message, true);
    });
  }

  function start() {
    stop();
    poll();
    timer = setInterval(poll, parseInt($('interval').value, 10) || 2000);
  }
  function stop() { if (timer) clearInterval(timer); timer = null; }

  /* ---- the model -------------------------------------------------------- */

  function update(stats, names, details) {
    var lk = stats.lookups || {};
    var embedq = num(stats.embed_queue), writeq = num(stats.write_queue);
    ring.push({t: Date.now() / 1000, exact: num(lk.exact_hit) || 0, semantic: num(lk.semantic_hit) || 0,
               miss: num(lk.miss) || 0, embedq: embedq, writeq: writeq, conns: num(stats.connections)});
    if (ring.length > RING) ring.shift();
    document.body.setAttribute('data-samples', String(ring.length));

    setText('t-lookups', fmtInt(num(lk.total)));
    setText('t-hitrate', fmtPct(num(stats.hit_rate)));
    var dollars = dollarsSaved(stats);
    var tokens = stats.tokens_saved || {};
    if (dollars !== null) {
      setText('t-saved-k', 'saved');
      setText('t-saved', '$' + dollars.toFixed(2) + ' (' +
              fmtInt((num(tokens.prompt) || 0) + (num(tokens.completion) || 0)) + ' tokens)');
    } else {
      setText('t-saved-k', 'tokens saved (prompt / completion)');
      setText('t-saved', fmtInt(num(tokens.prompt)) + ' / ' + fmtInt(num(tokens.completion)));
    }
    setText('t-entries', fmtInt(num(stats.entries)));
    setText('t-vectors', fmtInt(num(get(stats, ['index', 'vectors', 'flat']))) + ' / ' +
            fmtInt(num(get(stats, ['index', 'vectors', 'hnsw']))));
    var emb = stats.embedder;
    setText('t-embedder', emb ? (emb.identity || '?') + ' (' + (emb.state || '?') + ')' : 'none');
    $('t-embedder').title = $('t-embedder').textContent;
    setText('t-queues', fmtInt(embedq) + ' / ' + fmtInt(writeq));
    setText('t-conns', fmtInt(num(stats.connections)));

    renderNamespaces(stats, names, details);
    renderIndex(stats.index || {});
    if (stats.similarity) lastSim = stats.similarity;
    if (hasPlot) drawCharts(); else renderTables();
  }

  /* Rates between consecutive samples (a counter that went back, after a
   * restart, counts as 0). */
  function series() {
    var s = {t: [], exact: [], semantic: [], miss: [], hit: [], embedq: [], writeq: [], conns: []};
    for (var i = 1; i < ring.length; i++) {
      var a = ring[i - 1], b = ring[i], dt = b.t - a.t;
      if (dt <= 0) continue;
      var d = function (k) { return Math.max(0, b[k] - a[k]) / dt; };
      var e = d('exact'), sm = d('semantic'), m = d('miss'), all = e + sm + m;
      s.t.push(b.t);
      s.exact.push(e); s.semantic.push(sm); s.miss.push(m);
      s.hit.push(all > 0 ? (e + sm) / all : null);
      s.embedq.push(b.embedq); s.writeq.push(b.writeq); s.conns.push(b.conns);
    }
    return s;
  }

  /* ---- tables ----------------------------------------------------------- */

  function renderNamespaces(stats, names, details) {
    var tbody = $('namespaces').tBodies[0];
    tbody.textContent = '';
    names.forEach(function (n, i) {
      var lk = (stats.lookups_by_namespace || {})[n] || {};
      var d = details[i] || {};
      var q = d.quality || {};
      var settings = d.settings || {};
      var e = num(lk.exact_hit) || 0, s = num(lk.semantic_hit) || 0, m = num(lk.miss) || 0;
      var tr = document.createElement('tr');
      tr.setAttribute('data-namespace', n);
      cell(tr, n, 'name');
      cell(tr, fmtInt(e)); cell(tr, fmtInt(s)); cell(tr, fmtInt(m));
      cell(tr, e + s + m ? fmtPct((e + s) / (e + s + m)) : '-');
      cell(tr, num(settings.threshold) !== null ? fmtNum(settings.threshold, 3) : '-', 'threshold');
      cell(tr, num(q.learned_threshold) !== null ? fmtNum(q.learned_threshold, 3)
               : (num(settings.max_error_rate) ? 'learning' : '-'), 'learned');
      cell(tr, fmtInt(num(q.validated)));
      cell(tr, fmtPct(num(q.false_hit_rate), 2), 'rate');
      var upper = num(q.false_hit_rate_upper);
      cell(tr, fmtPct(upper, 2), 'upper' + (upper !== null && num(settings.max_error_rate) &&
                                            upper > settings.max_error_rate ? ' bad' : ''));
      cell(tr, fmtInt(num(get(d, ['usage', 'entries']))));
      tbody.appendChild(tr);
    });
  }

  function renderIndex(ix) {
    var rows = [
      ['ready', ix.ready === undefined ? '-' : String(ix.ready) + (ix.loaded_from ? ' (' + ix.loaded_from + ')' : '')],
      ['vectors: flat / hnsw', fmtInt(num(get(ix, ['vectors', 'flat']))) + ' / ' + fmtInt(num(get(ix, ['vectors', 'hnsw'])))],
      ['scopes: flat / hnsw', fmtInt(num(get(ix, ['scopes', 'flat']))) + ' / ' + fmtInt(num(get(ix, ['scopes', 'hnsw'])))],
      ['delta / deleted', fmtInt(num(ix.delta)) + ' / ' + fmtInt(num(ix.deleted))],
      ['promotions / merges / compactions', fmtInt(num(ix.promotions)) + ' / ' + fmtInt(num(ix.merges)) + ' / ' + fmtInt(num(ix.compactions))]
    ];
    var tbody = $('index').tBodies[0];
    tbody.textContent = '';
    rows.forEach(function (r) {
      var tr = document.createElement('tr');
      var th = document.createElement('th');
      th.textContent = r[0];
      tr.appendChild(th);
      cell(tr, r[1]);
      tbody.appendChild(tr);
    });
  }

  function renderTables() {
    var sb = $('similarity').tBodies[0];
    sb.textContent = '';
    if (lastSim && lastSim.le) {
      lastSim.le.forEach(function (le, k) {
        var tr = document.createElement('tr');
        cell(tr, String(le)); cell(tr, fmtInt((lastSim.hit || [])[k])); cell(tr, fmtInt((lastSim.near_miss || [])[k]));
        sb.appendChild(tr);
      });
    }
    var s = series(), tb = $('samples').tBodies[0];
    tb.textContent = '';
    for (var i = s.t.length - 1; i >= Math.max(0, s.t.length - 20); i--) {
      var tr = document.createElement('tr');
      cell(tr, new Date(s.t[i] * 1000).toLocaleTimeString('en-GB'));
      cell(tr, fmtNum(s.exact[i], 2)); cell(tr, fmtNum(s.semantic[i], 2)); cell(tr, fmtNum(s.miss[i], 2));
      cell(tr, fmtPct(s.hit[i])); cell(tr, fmtInt(s.embedq[i])); cell(tr, fmtInt(s.writeq[i])); cell(tr, fmtInt(s.conns[i]));
      tb.appendChild(tr);
    }
  }

  /* ---- charts ----------------------------------------------------------- */

  function width(el) { return Math.max(280, el.clientWidth - 8); }

  function makeChart(id, opts, data) {
    var el = $(id);
    opts.width = width(el);
    opts.height = 220;
    charts[id] = new window.uPlot(opts, data, el);
  }

  function line(label, color, extra) {
    var s = {label: label, stroke: color, width: 2, points: {show: false}};
    Object.keys(extra || {}).forEach(function (k) { s[k] = extra[k]; });
    return s;
  }

  function drawCharts() {
    var s = series();
    var rate = function (u, v) { return v === null || v === undefined ? '-' : v.toFixed(2) + '/s'; };
    var data = {
      'c-lookups': [s.t, s.exact, s.semantic, s.miss],
      'c-hitrate': [s.t, s.hit],
      'c-queues': [s.t, s.embedq, s.writeq, s.conns]
    };
    if (!charts['c-lookups']) {
      makeChart('c-lookups', {series: [{}, line('exact hit', COLORS.exact, {value: rate}),
        line('semantic hit', COLORS.semantic, {value: rate}), line('miss', COLORS.miss, {value: rate})],
        scales: {y: {range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; }}}}, data['c-lookups']);
      makeChart('c-hitrate', {series: [{}, line('hit rate', COLORS.hit, {value: function (u, v) { return fmtPct(v); }, spanGaps: true,
                                                          points: {show: true, size: 6, fill: COLORS.hit}})],
        scales: {y: {range: [0, 1]}}, axes: [{}, {values: function (u, vals) { return vals.map(function (v) { return Math.round(v * 100) + '%'; }); }}]},
        data['c-hitrate']);
      makeChart('c-queues', {series: [{}, line('embed queue', COLORS.embed), line('write queue', COLORS.write),
        line('connections', COLORS.conns, {dash: [6, 4]})],
        scales: {y: {range: function (u, min, max) { return [0, Math.max(4, max * 1.1)]; }}}}, data['c-queues']);
    } else {
      Object.keys(data).forEach(function (id) { charts[id].setData(data[id]); });
    }
    drawSimilarity();
    Object.keys(charts).forEach(function (id) {
      var el = $(id);
      el.setAttribute('data-points', String(pointsIn(charts[id].data)));
    });
  }

  /* Non-zero values across a chart's series (the x series excluded). */
  function pointsIn(data) {
    var n = 0;
    for (var i = 1; i < data.length; i++)
      for (var j = 0; j < data[i].length; j++) if (data[i][j]) n++;
    return n;
  }

  /* Bars per similarity bucket, hits and near misses side by side; x is the
   * bucket's upper edge. */
  function drawSimilarity() {
    if (!lastSim || !Array.isArray(lastSim.le)) return;
    var xs = lastSim.le.map(function (v, k) { return k; });
    var data = [xs, (lastSim.hit || []).slice(), (lastSim.near_miss || []).slice()];
    if (charts['c-similarity']) { charts['c-similarity'].setData(data); return; }
    var bars = window.uPlot.paths && window.uPlot.paths.bars;
    var barOpts = function (k) { return bars ? bars({size: [0.4, 40], align: k ? 1 : -1}) : undefined; };
    var le = lastSim.le;
    makeChart('c-similarity', {
      scales: {x: {time: false, range: [-0.5, le.length - 0.5]},
               y: {range: function (u, min, max) { return [0, Math.max(1, max * 1.15)]; }}},
      axes: [{values: function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) && le[v] !== undefined ? '\u2264' + le[v] : ''; }); },
              splits: function () { return xs; }}, {}],
      series: [{label: 'similarity \u2264', value: function (u, v) { return v === null ? '-' : String(le[v]); }},
        {label: 'semantic hits', stroke: COLORS.hit, fill: COLORS.hit + 'cc', paths: barOpts(0), points: {show: false}},
        {label: 'near misses', stroke: COLORS.near, fill: COLORS.near + 'cc', paths: barOpts(1), points: {show: false}}]
    }, data);
  }

  function resize() {
    Object.keys(charts).forEach(function (id) {
      charts[id].setSize({width: width($(id)), height: 220});
    });
  }

  /* ---- wiring ------------------------------------------------------------ */

  $('auth').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    start();
  });
  $('forget').addEventListener('click', function () {
    sessionStorage.removeItem(TOKEN_KEY);
    $('forget').hidden = true;
    start();
  });
  var saved = localStorage.getItem('semcached.interval');
  if (saved && $('interval').querySelector('option[value="' + saved + '"]')) $('interval').value = saved;
  $('interval').addEventListener('change', function () {
    localStorage.setItem('semcached.interval', $('interval').value);
    start();
  });
  window.addEventListener('resize', resize);
  if (!hasPlot) {
    $('fallback').hidden = false;
    $('tables').hidden = false;
    document.querySelector('.charts').hidden = true;
    document.querySelector('footer').hidden = true; /* no uPlot, no credit */
  }
  document.body.setAttribute('data-charts', hasPlot ? 'uplot' : 'tables');
  start();
})();
