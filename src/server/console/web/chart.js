// A trend chart on a canvas: several series on one time axis, one value
// axis per unit, quality (Bad, Uncertain) shaded, stepped or sloped lines.
// Zoom by dragging a range or with the wheel, pan with shift-drag; keys on
// the focused chart: + and - zoom, arrows pan. The chart only draws and
// reports the view the user asks for (onView); the page fetches.

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const AXIS_WIDTH = 58;
const TOP = 10, BOTTOM = 26;

export function color(i) { return PALETTE[i % PALETTE.length]; }

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// Tick positions for [lo, hi] at about `count` ticks, on 1-2-5 steps.
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * 1e3)
  .concat([1, 2, 5, 10, 15, 30].map((m) => m * 60e3))
  .concat([1, 2, 3, 6, 12].map((h) => h * 3600e3))
  .concat([1, 2, 7, 14, 30, 91, 182, 365].map((d) => d * 86400e3));

function timeTicks(from, to, count) {
  const step = TIME_STEPS.find((s) => (to - from) / s <= count) || TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date(from).getTimezoneOffset() * 60e3;
  const ticks = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) ticks.push(t);
  return { ticks, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (step < 60e3) return `${hm}:${pad(d.getSeconds())}`;
  if (step < 86400e3) return d.getHours() === 0 && d.getMinutes() === 0 ? `${d.getMonth() + 1}/${d.getDate()}` : hm;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export class Chart {
  constructor(container, { onView } = {}) {
    this.onView = onView || (() => {});
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'chart';
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'Trend chart: drag to zoom, shift-drag to pan, + and - to zoom, arrows to pan');
    this.tip = document.createElement('div');
    this.tip.className = 'chart-tip';
    this.tip.hidden = true;
    const wrap = document.createElement('div');
    wrap.className = 'chart-wrap';
    wrap.append(this.canvas, this.tip);
    container.append(wrap);
    this.series = [];
    this.from = 0; this.to = 1;
    this.drag = null;
    this.bind();
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(this.canvas);
    this.redraw = () => this.draw();
    window.addEventListener('lotline:theme', this.redraw);
  }

  dispose() { this.resizer.disconnect(); window.removeEventListener('lotline:theme', this.redraw); }

  // Units in order of first appearance; each gets its own value axis.
  units() { return [...new Set(this.series.map((s) => s.unit || ''))]; }

  layout() {
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const axes = Math.max(1, this.units().length);
    const left = AXIS_WIDTH * Math.ceil(axes / 2), right = AXIS_WIDTH * Math.floor(axes / 2) || 12;
    return { width, height, left, right, plotWidth: Math.max(10, width - left - right), plotHeight: Math.max(10, height - TOP - BOTTOM) };
  }

  // Pixels the plot is wide: the width history is asked for.
  plotWidth() { return Math.round(this.layout().plotWidth); }

  setView(from, to) { this.from = from; this.to = to; }

  // series: [{ tag, unit, interpolation, t: [ms], v: [..], quality: [[t0, t1, severity]] }]
  setSeries(series) { this.series = series; this.draw(); }

  scales() {
    const l = this.layout();
    const ranges = new Map();
    for (const s of this.series) {
      const key = s.unit || '';
      const r = ranges.get(key) || [Infinity, -Infinity];
      for (const v of s.v) { if (v < r[0]) r[0] = v; if (v > r[1]) r[1] = v; }
      ranges.set(key, r);
    }
    for (const [key, [lo, hi]] of ranges) {
      if (!Number.isFinite(lo)) ranges.set(key, [0, 1]);
      else if (lo === hi) ranges.set(key, [lo - 1, hi + 1]);
      else { const pad = (hi - lo) * 0.05; ranges.set(key, [lo - pad, hi + pad]); }
    }
    const x = (t) => l.left + ((t - this.from) / (this.to - this.from)) * l.plotWidth;
    const y = (unit, v) => { const [lo, hi] = ranges.get(unit || '') || [0, 1]; return TOP + (1 - (v - lo) / (hi - lo)) * l.plotHeight; };
    return { l, ranges, x, y };
  }

  // Where series `i`'s point (t, v) is drawn, in CSS pixels of the canvas.
  toPixel(i, t, v) { const { x, y } = this.scales(); return [x(t), y(this.series[i].unit, v)]; }

  draw() {
    const dpr = window.devicePixelRatio || 1;
    const { l, ranges, x, y } = this.scales();
    if (!l.width || !l.height) return;
    this.canvas.width = Math.round(l.width * dpr);
    this.canvas.height = Math.round(l.height * dpr);
    const g = this.canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const fg = css('--fg') || '#222', grid = css('--grid') || '#ddd', muted = css('--muted') || '#777';
    g.clearRect(0, 0, l.width, l.height);
    g.font = '11px system-ui, sans-serif';
    // Quality: shaded under the whole plot height where a series had Bad or Uncertain samples.
    for (const s of this.series) {
      for (const [t0, t1, severity] of s.quality || []) {
        g.fillStyle = severity >= 2 ? 'rgba(220, 40, 40, 0.16)' : 'rgba(230, 160, 0, 0.16)';
        const x0 = Math.max(l.left, x(t0)), x1 = Math.min(l.left + l.plotWidth, x(t1));
        if (x1 >= x0) g.fillRect(x0, TOP, Math.max(1, x1 - x0), l.plotHeight);
      }
    }
    // Time axis and grid.
    const { ticks, step } = timeTicks(this.from, this.to, Math.max(2, l.plotWidth / 110));
    g.strokeStyle = grid; g.fillStyle = muted; g.lineWidth = 1; g.textAlign = 'center'; g.textBaseline = 'top';
    for (const t of ticks) {
      const px = Math.round(x(t)) + 0.5;
      g.beginPath(); g.moveTo(px, TOP); g.lineTo(px, TOP + l.plotHeight); g.stroke();
      g.fillText(timeLabel(t, step), px, TOP + l.plotHeight + 6);
    }
    // Value axes: odd ones on the left, even ones on the right, each in its first series' colour.
    this.units().forEach((unit, i) => {
      const [lo, hi] = ranges.get(unit);
      const left = i % 2 === 0;
      const slot = Math.floor(i / 2);
      const ax = left ? l.left - slot * AXIS_WIDTH : l.left + l.plotWidth + slot * AXIS_WIDTH;
      const owner = this.series.findIndex((s) => (s.unit || '') === unit);
      g.fillStyle = this.series.length > 1 ? color(owner) : fg;
      g.textAlign = left ? 'right' : 'left'; g.textBaseline = 'middle';
      for (const v of niceTicks(lo, hi, Math.max(2, l.plotHeight / 40))) {
        const py = y(unit, v);
        g.fillText(String(v), left ? ax - 6 : ax + 6, py);
        if (i === 0) { g.strokeStyle = grid; g.beginPath(); g.moveTo(l.left, Math.round(py) + 0.5); g.lineTo(l.left + l.plotWidth, Math.round(py) + 0.5); g.stroke(); }
      }
      g.save(); g.translate(left ? ax - AXIS_WIDTH + 10 : ax + AXIS_WIDTH - 10, TOP + l.plotHeight / 2);
      g.rotate(-Math.PI / 2); g.textAlign = 'center'; g.fillText(unit || '(no unit)', 0, 0); g.restore();
    });
    // Lines, clipped to the plot.
    g.save(); g.beginPath(); g.rect(l.left, TOP, l.plotWidth, l.plotHeight); g.clip();
    this.series.forEach((s, i) => {
      g.strokeStyle = color(i); g.lineWidth = 1.5; g.beginPath();
      const stepped = s.interpolation === 'step';
      let last = null;
      for (let k = 0; k < s.t.length; k++) {
        const px = x(s.t[k]), py = y(s.unit, s.v[k]);
        if (last === null) g.moveTo(px, py);
        else { if (stepped) g.lineTo(px, last); g.lineTo(px, py); }
        last = py;
      }
      if (s.t.length === 1) { const px = x(s.t[0]), py = y(s.unit, s.v[0]); g.rect(px - 1.5, py - 1.5, 3, 3); }
      g.stroke();
    });
    g.restore();
    g.strokeStyle = grid; g.strokeRect(l.left + 0.5, TOP + 0.5, l.plotWidth, l.plotHeight);
    if (this.drag && this.drag.mode === 'zoom') {
      g.fillStyle = 'rgba(100, 140, 220, 0.2)';
      const a = Math.min(this.drag.x0, this.drag.x1), b = Math.max(this.drag.x0, this.drag.x1);
      g.fillRect(a, TOP, b - a, l.plotHeight);
    }
    this.canvas.dataset.drawnPoints = String(this.series.reduce((n, s) => n + s.t.length, 0));
  }

  timeAt(px) { const l = this.layout(); return this.from + ((px - l.left) / l.plotWidth) * (this.to - this.from); }

  zoom(factor, center = (this.from + this.to) / 2) {
    const span = Math.max(1, (this.to - this.from) * factor);
    const ratio = (center - this.from) / (this.to - this.from);
    this.onView(center - span * ratio, center - span * ratio + span);
  }

  pan(fraction) { const shift = (this.to - this.from) * fraction; this.onView(this.from + shift, this.to + shift); }

  bind() {
    const c = this.canvas;
    const px = (e) => e.clientX - c.getBoundingClientRect().left;
    c.addEventListener('pointerdown', (e) => {
      c.setPointerCapture(e.pointerId);
      this.drag = { mode: e.shiftKey ? 'pan' : 'zoom', x0: px(e), x1: px(e), from: this.from, to: this.to };
    });
    c.addEventListener('pointermove', (e) => {
      this.hover(e);
      if (!this.drag) return;
      this.drag.x1 = px(e);
      if (this.drag.mode === 'zoom') this.draw();
    });
    c.addEventListener('pointerup', () => {
      const d = this.drag; this.drag = null;
      if (!d) return;
      if (d.mode === 'pan') {
        const shift = ((d.x0 - d.x1) / this.layout().plotWidth) * (d.to - d.from);
        if (Math.abs(d.x1 - d.x0) > 2) this.onView(d.from + shift, d.to + shift);
      } else if (Math.abs(d.x1 - d.x0) > 4) {
        const a = this.timeAt(Math.min(d.x0, d.x1)), b = this.timeAt(Math.max(d.x0, d.x1));
        this.onView(a, b);
      } else this.draw();
    });
    c.addEventListener('pointerleave', () => { this.tip.hidden = true; });
    // The wheel zooms the drawing at once and asks for data once it rests,
    // not once per notch of a trackpad gesture.
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const factor = e.deltaY > 0 ? 1.25 : 0.8, center = this.timeAt(px(e));
      const span = (this.to - this.from) * factor, ratio = (center - this.from) / (this.to - this.from);
      this.from = center - span * ratio; this.to = this.from + span;
      this.draw();
      clearTimeout(this.wheelTimer);
      this.wheelTimer = setTimeout(() => this.onView(this.from, this.to), 200);
    }, { passive: false });
    c.addEventListener('keydown', (e) => {
      const actions = { '+': () => this.zoom(0.5), '=': () => this.zoom(0.5), '-': () => this.zoom(2), ArrowLeft: () => this.pan(-0.25), ArrowRight: () => this.pan(0.25) };
      if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
    });
  }

  // The values of each series nearest the pointer's time.
  hover(e) {
    if (!this.series.length) return;
    const t = this.timeAt(e.clientX - this.canvas.getBoundingClientRect().left);
    const lines = this.series.map((s) => {
      let best = -1;
      for (let k = 0; k < s.t.length; k++) if (s.t[k] <= t) best = k; else break;
      return best < 0 ? null : `${s.tag}: ${+s.v[best].toPrecision(6)} ${s.unit || ''}`;
    }).filter(Boolean);
    this.tip.textContent = [new Date(t).toLocaleString(), ...lines].join('\n');
    this.tip.hidden = false;
  }
}
