// Moves every panel's points from where they are to their next layout over ANIMATION_MS, eased, one redraw per
// animation frame; the dashboard says where they go (index.js) and the panels draw them (views.js).

export const ANIMATION_MS = 700;

export class Motion {
  /** `draw()` redraws every panel; `settled()` is called once the points have arrived. */
  constructor(draw, settled) {
    this.draw = draw;
    this.settled = settled;
    this.requested = false;
  }

  /** Sends each panel's points to `targets[k]` (x, y per row, or null: nothing to draw), from where they are
   * when `animate` and the rows match, else straight there. */
  start(panels, targets, animate) {
    panels.forEach((panel, k) => {
      const target = targets[k];
      const moving = animate && panel.shown && target && panel.shown.length === target.length;
      panel.from = moving ? panel.shown : target;
      panel.to = target;
      panel.shown = target && new Float32Array(panel.from);
    });
    this.panels = panels;
    this.started = performance.now();
    document.body.dataset.state = 'animating';
    if (!this.requested) {
      this.requested = true;
      requestAnimationFrame((now) => this.frame(now));
    }
  }

  frame(now) {
    this.requested = false;
    const t = Math.min(1, (now - this.started) / ANIMATION_MS);
    const eased = t * t * (3 - 2 * t);
    for (const {from, to, shown} of this.panels) {
      for (let i = 0; shown && i < shown.length; i++) shown[i] = from[i] + (to[i] - from[i]) * eased;
    }
    this.draw();
    if (t < 1) {
      this.requested = true;
      requestAnimationFrame((next) => this.frame(next));
    } else {
      this.settled();
    }
  }
}
