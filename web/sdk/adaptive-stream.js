// @ts-check
// Adaptive stream: the size a video element is shown at (and whether it is on screen at all)
// becomes its subscription's viewport, so the server never sends a layer larger than the tile
// needs and sends nothing to a tile nobody can see.

/** Sizes settle for this long before they are reported: a window drag must not flood the server. */
const SETTLE_MS = 150;

/** @typedef {{maxWidth: number, maxHeight: number, hidden: boolean}} View */

/**
 * One followed element.
 * @typedef {object} Watched
 * @property {string} trackId
 * @property {HTMLElement} el
 * @property {boolean} visible
 * @property {ReturnType<typeof setTimeout> | null} timer
 * @property {View | null} last the view last reported
 */

export class AdaptiveStream {
  /** @param {(trackId: string, view: View) => void} onChange */
  constructor(onChange) {
    this._onChange = onChange;
    /** @type {Map<string, Watched>} by track id */
    this._watched = new Map();
    this._resize = new ResizeObserver((entries) => {
      for (const e of entries) this._byElement(e.target).forEach((w) => this._schedule(w));
    });
    this._visibility = new IntersectionObserver((entries) => {
      for (const e of entries) {
        for (const w of this._byElement(e.target)) {
          w.visible = e.isIntersecting;
          this._schedule(w);
        }
      }
    });
  }

  /**
   * Starts following `el` as the tile of `trackId` (replacing any earlier element).
   * @param {string} trackId
   * @param {HTMLElement} el
   */
  observe(trackId, el) {
    this.unobserve(trackId);
    /** @type {Watched} */
    const watched = { trackId, el, visible: true, timer: null, last: null };
    this._watched.set(trackId, watched);
    this._resize.observe(el);
    this._visibility.observe(el);
    this._schedule(watched);
  }

  /** @param {string} trackId */
  unobserve(trackId) {
    const w = this._watched.get(trackId);
    if (!w) return;
    clearTimeout(w.timer);
    this._watched.delete(trackId);
    if (this._byElement(w.el).length === 0) {
      this._resize.unobserve(w.el);
      this._visibility.unobserve(w.el);
    }
  }

  /**
   * The last view reported for `trackId`, if it is followed.
   * @param {string} trackId
   * @returns {View | null}
   */
  view(trackId) {
    return this._watched.get(trackId)?.last ?? null;
  }

  close() {
    for (const w of this._watched.values()) clearTimeout(w.timer);
    this._watched.clear();
    this._resize.disconnect();
    this._visibility.disconnect();
  }

  /**
   * @param {Element} el
   * @returns {Watched[]}
   */
  _byElement(el) {
    return [...this._watched.values()].filter((w) => w.el === el);
  }

  /** @param {Watched} w */
  _schedule(w) {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => this._report(w), SETTLE_MS);
  }

  /** @param {Watched} w */
  _report(w) {
    if (this._watched.get(w.trackId) !== w) return;
    const dpr = globalThis.devicePixelRatio || 1;
    const maxWidth = Math.round(w.el.clientWidth * dpr);
    const maxHeight = Math.round(w.el.clientHeight * dpr);
    const hidden = !w.visible || maxWidth === 0 || maxHeight === 0;
    const last = w.last;
    if (last && last.maxWidth === maxWidth && last.maxHeight === maxHeight && last.hidden === hidden) return;
    w.last = { maxWidth, maxHeight, hidden };
    this._onChange(w.trackId, w.last);
  }
}
