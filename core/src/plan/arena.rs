//! Lifetimes of the arena buffers and their placement (greedy first-fit, largest first).

use super::*;
use crate::ops::pool::UnpoolGeom;

impl<const CAP: usize> Plan<'_, CAP> {
    // ---- lifetimes ----

    /// Step of the forward pass of node `i`.
    const fn t_fwd(i: usize) -> u16 {
        (i + 1) as u16
    }
    /// Step of the backward pass of node `i`.
    const fn t_bwd(&self, i: usize) -> u16 {
        (2 * self.len + 1 - i) as u16
    }

    pub(super) const fn lifetimes(&mut self) {
        let l = self.len;
        let training = matches!(self.mode, Mode::Training);
        let loss_t = (l + 1) as u16;
        let mut input_last = 0u16;
        let mut input_needed = false;
        let mut input_grad_len = 0usize;
        let mut i = 0;
        while i < l {
            let mut n = self.nodes[i];
            let tf = Self::t_fwd(i);
            let tb = self.t_bwd(i);
            n.out.first = tf;
            n.out.last = if i + 1 == l { loss_t } else { tf };
            if training {
                if n.keeps_output() {
                    n.out.last = tb;
                }
                n.grad = Slot {
                    offset: 0,
                    len: n.out.len,
                    first: tb,
                    last: tb,
                };
                if i + 1 == l {
                    n.grad.first = loss_t;
                }
            }
            if n.extra.len > 0 {
                n.extra.first = tf;
                n.extra.last = tf;
                if training {
                    n.extra.last = tb;
                }
            }
            if n.work_fwd.len > 0 {
                n.work_fwd.first = tf;
                n.work_fwd.last = tf;
            }
            if training && n.work_bwd.len > 0 {
                n.work_bwd.first = tb;
                n.work_bwd.last = tb;
            } else {
                n.work_bwd = Slot::NONE;
            }
            self.nodes[i] = n;
            i += 1;
        }
        // Extend producers' lifetimes to their consumers.
        let mut j = 0;
        while j < l {
            let n = self.nodes[j];
            let tf = Self::t_fwd(j);
            let tb = self.t_bwd(j);
            let keeps = training && n.keeps_input();
            let mut k = 0;
            while k < 2 {
                let p = n.inputs[k];
                let is_merge = matches!(n.exec, Exec::Add | Exec::Concat(_) | Exec::Bilinear(_));
                if k == 1 && !is_merge {
                    break;
                }
                let last = if keeps { tb } else { tf };
                if p == INPUT {
                    input_needed |= keeps;
                    if input_last < last {
                        input_last = last;
                    }
                    if training && n.joint_input_grad() {
                        input_grad_len = super::batch_len(self.batch, self.input.numel());
                    }
                } else {
                    // An in-place node's readers keep its storage's buffer alive.
                    let pi = self.storage(p) as usize;
                    if self.nodes[pi].out.last < last {
                        self.nodes[pi].out.last = last;
                    }
                    if training && self.nodes[pi].grad.first > tb {
                        self.nodes[pi].grad.first = tb;
                    }
                }
                k += 1;
            }
            // A fused pool reads its convolution's input.
            if let Fuse::ConvPool { conv, .. } = n.fuse {
                let p = self.storage(self.nodes[conv as usize].inputs[0]);
                if p != INPUT && self.nodes[p as usize].out.last < tf {
                    self.nodes[p as usize].out.last = tf;
                }
            }
            if let Exec::MaxUnpool(UnpoolGeom { pool, .. }) = n.exec {
                let pi = pool as usize;
                if self.nodes[pi].extra.last < tf {
                    self.nodes[pi].extra.last = tf;
                }
            }
            j += 1;
        }
        // The output is read after the last step, from its storage.
        if l > 0 {
            let s = self.storage((l - 1) as u16);
            if s != INPUT && self.nodes[s as usize].out.last < loss_t {
                self.nodes[s as usize].out.last = loss_t;
            }
        }
        if training && input_needed {
            self.input_slot = Slot {
                offset: 0,
                len: super::batch_len(self.batch, self.input.numel()),
                first: 0,
                last: input_last,
            };
        }
        if training && self.input_grad_wanted {
            input_grad_len = super::batch_len(self.batch, self.input.numel());
        }
        if input_grad_len > 0 {
            // The input gradient, or scratch for kernels that always write one; it lives from
            // the loss to the end of backward, so it is still there when backward returns.
            self.input_grad = Slot {
                offset: 0,
                len: input_grad_len,
                // The planned input gradient is zeroed at the loss step, before backward.
                first: if self.input_grad_wanted { loss_t } else { (l + 2) as u16 },
                last: (2 * l + 1) as u16,
            };
        }
    }

    // ---- placement ----

    /// Visits slot `k` (5 per node, then the two input slots) mutably.
    const fn slot_mut(&mut self, k: usize) -> &mut Slot {
        let node = k / 5;
        if node >= self.len {
            if k == 5 * self.len {
                return &mut self.input_slot;
            }
            return &mut self.input_grad;
        }
        match k % 5 {
            0 => &mut self.nodes[node].out,
            1 => &mut self.nodes[node].grad,
            2 => &mut self.nodes[node].extra,
            3 => &mut self.nodes[node].work_fwd,
            _ => &mut self.nodes[node].work_bwd,
        }
    }

    pub(super) const fn slot(&self, k: usize) -> Slot {
        let node = k / 5;
        if node >= self.len {
            if k == 5 * self.len {
                return self.input_slot;
            }
            return self.input_grad;
        }
        match k % 5 {
            0 => self.nodes[node].out,
            1 => self.nodes[node].grad,
            2 => self.nodes[node].extra,
            3 => self.nodes[node].work_fwd,
            _ => self.nodes[node].work_bwd,
        }
    }

    pub(super) const fn slot_count(&self) -> usize {
        5 * self.len + 2
    }

    pub(super) const fn place(&mut self) {
        let count = self.slot_count();
        // Placement order: largest first, ties by slot index (insertion sort into `order`).
        let mut order = Flat::<CAP>::new();
        let mut k = 0;
        while k < count {
            let s = self.slot(k);
            let mut pos = k;
            while pos > 0 {
                let prev = order.get(pos - 1);
                let p = self.slot(prev);
                if p.len > s.len || (p.len == s.len && prev < k) {
                    break;
                }
                order.set(pos, order.get(pos - 1));
                pos -= 1;
            }
            order.set(pos, k);
            k += 1;
        }
        let mut placed = Flat::<CAP>::new(); // 1 once placed
        let mut arena = 0usize;
        let mut r = 0;
        while r < count {
            let idx = order.get(r);
            let s = self.slot(idx);
            r += 1;
            if s.len == 0 {
                continue;
            }
            let size = align(s.len);
            // First fit: the lowest offset that conflicts with no placed, simultaneously live slot.
            let mut offset = 0usize;
            let mut moved = true;
            while moved {
                moved = false;
                let mut q = 0;
                while q < count {
                    if placed.get(q) == 1 {
                        let o = self.slot(q);
                        if o.first <= s.last
                            && s.first <= o.last
                            && offset < o.offset.saturating_add(align(o.len))
                            && o.offset < offset.saturating_add(size)
                        {
                            offset = o.offset.saturating_add(align(o.len));
                            moved = true;
                        }
                    }
                    q += 1;
                }
            }
            self.slot_mut(idx).offset = offset;
            placed.set(idx, 1);
            if offset.saturating_add(size) > arena {
                arena = offset.saturating_add(size);
            }
        }
        self.arena_len = arena;
        // Peak live size: the largest sum of aligned sizes live at one step.
        let steps = 2 * self.len + 2;
        let mut t = 0;
        let mut peak = 0;
        while t < steps {
            let mut sum = 0usize;
            let mut k = 0;
            while k < count {
                let s = self.slot(k);
                if s.len > 0 && s.first as usize <= t && t <= s.last as usize {
                    sum = sum.saturating_add(align(s.len));
                }
                k += 1;
            }
            if sum > peak {
                peak = sum;
            }
            t += 1;
        }
        self.peak_live = peak;
    }
}

/// A scratch array of one `usize` per arena slot (`5 * CAP + 2`), usable in `const fn`.
struct Flat<const CAP: usize> {
    main: [[usize; 5]; CAP],
    extra: [usize; 2],
}

impl<const CAP: usize> Flat<CAP> {
    const fn new() -> Self {
        Flat {
            main: [[0; 5]; CAP],
            extra: [0; 2],
        }
    }
    const fn get(&self, k: usize) -> usize {
        if k / 5 < CAP {
            self.main[k / 5][k % 5]
        } else {
            self.extra[k - 5 * CAP]
        }
    }
    const fn set(&mut self, k: usize, v: usize) {
        if k / 5 < CAP {
            self.main[k / 5][k % 5] = v;
        } else {
            self.extra[k - 5 * CAP] = v;
        }
    }
}
