//! [`Architecture`]: the layer tree a [`super::Model`] owns.
//!
//! A plan borrows its layers ([`torchlet::Plan`]`<'l, CAP>` holds `&'l [Layer<'l>]`), so a
//! model needs somewhere its layers live as long as it does. The zoo's `const` lists live for
//! the whole program and cost nothing ([`Architecture::from_static`]); a tree built at run time
//! (a model file's layers, a zoo model adapted to a data set) is copied, names included, into an
//! arena that the architecture owns next to the root slice that borrows it (a self-referential
//! pair, built with `self_cell`). The arena is shared by [`Arc`]: cloning a model is cheap, and
//! the last clone dropped frees the layers. Nothing is leaked.
//!
//! The arena is a `bumpalo_herd::Herd` (a `Sync` group of `bumpalo` arenas) rather than a
//! plain `bumpalo::Bump`, which is not `Sync`: with it [`super::Model`] stays `Send + Sync`.

use std::fmt;
use std::sync::{Arc, Weak};

use bumpalo_herd::{Herd, Member};
use torchlet::layer::{Kind, Layer};

use super::HostPlan;

/// The root of a tree of layers in an arena.
type Root<'a> = &'a [Layer<'a>];

self_cell::self_cell!(
    /// An arena and the layer tree allocated in it.
    struct Arena {
        owner: Herd,
        #[covariant]
        dependent: Root,
    }
);

/// A boxed plan of a model's layers.
type BoxedPlan<'a> = Box<HostPlan<'a>>;

self_cell::self_cell!(
    /// A plan together with the architecture whose layers it borrows
    /// ([`super::Model::owned_plan`]): it borrows nothing itself, so it can be kept in a
    /// struct that lives next to `&mut model.params`.
    pub(crate) struct OwnedPlan {
        owner: Architecture,
        #[covariant]
        dependent: BoxedPlan,
    }
);

impl OwnedPlan {
    /// The plan.
    pub(crate) fn plan(&self) -> &HostPlan<'_> {
        self.borrow_dependent()
    }
}

/// A model's layer tree, owned: a `'static` list as it is ([`Architecture::from_static`]), or
/// a tree built at run time copied into an arena of its own ([`Architecture::copy_of`]), which
/// the last clone frees. Cloning it is cheap (a pointer and a reference count); two
/// architectures are equal when their layer trees are. Plans borrow its layers.
#[derive(Clone)]
pub struct Architecture(Tree);

#[derive(Clone)]
enum Tree {
    /// A list that lives for the whole program (the zoo's `const`s).
    Static(&'static [Layer<'static>]),
    /// A tree built at run time, in an arena of its own.
    Owned(Arc<Arena>),
}

impl Architecture {
    /// A `'static` layer list (a `const` or `static`), without a copy or an allocation.
    pub fn from_static(layers: &'static [Layer<'static>]) -> Architecture {
        Architecture(Tree::Static(layers))
    }

    /// A copy of `layers` (the whole tree, names included) in an arena of its own, for a model
    /// built at run time: the copy borrows nothing from `layers`.
    pub fn copy_of(layers: &[Layer<'_>]) -> Architecture {
        Architecture::build(|arena| copy_tree(arena, layers))
    }

    /// The tree that `build` makes in a fresh arena (it may also borrow `'static` lists, such
    /// as the zoo's, instead of copying them).
    pub(crate) fn build(build: impl for<'a> FnOnce(&Member<'a>) -> &'a [Layer<'a>]) -> Architecture {
        Architecture(Tree::Owned(Arc::new(Arena::new(Herd::new(), |herd| {
            build(&herd.get())
        }))))
    }

    /// [`Architecture::build`] for a `build` that may fail (the arena is then freed).
    pub(crate) fn try_build<E>(
        build: impl for<'a> FnOnce(&Member<'a>) -> Result<&'a [Layer<'a>], E>,
    ) -> Result<Architecture, E> {
        let arena = Arena::try_new(Herd::new(), |herd| build(&herd.get()))?;
        Ok(Architecture(Tree::Owned(Arc::new(arena))))
    }

    /// The layers: the root `nn.Sequential`.
    pub fn layers(&self) -> &[Layer<'_>] {
        match &self.0 {
            Tree::Static(layers) => layers,
            Tree::Owned(arena) => arena.borrow_dependent(),
        }
    }

    /// Whether the layers are a `'static` list that was not copied.
    pub fn is_static(&self) -> bool {
        matches!(self.0, Tree::Static(_))
    }

    /// A weak reference to an arena-owned tree (`None` for a `'static` list), for tests that
    /// check that the layers are freed with the last clone.
    #[doc(hidden)]
    pub fn downgrade(&self) -> Option<WeakArchitecture> {
        match &self.0 {
            Tree::Static(_) => None,
            Tree::Owned(arena) => Some(WeakArchitecture(Arc::downgrade(arena))),
        }
    }
}

/// See [`Architecture::downgrade`].
#[doc(hidden)]
pub struct WeakArchitecture(Weak<Arena>);

impl WeakArchitecture {
    /// Whether the arena is still alive (some [`Architecture`] still holds it).
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl From<&'static [Layer<'static>]> for Architecture {
    fn from(layers: &'static [Layer<'static>]) -> Architecture {
        Architecture::from_static(layers)
    }
}

impl<const N: usize> From<&'static [Layer<'static>; N]> for Architecture {
    fn from(layers: &'static [Layer<'static>; N]) -> Architecture {
        Architecture::from_static(layers)
    }
}

impl PartialEq for Architecture {
    fn eq(&self, other: &Architecture) -> bool {
        self.layers() == other.layers()
    }
}

impl fmt::Debug for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.layers().fmt(f)
    }
}

/// A copy of the tree `layers` in `arena`, names included.
pub(crate) fn copy_tree<'a>(arena: &Member<'a>, layers: &[Layer<'_>]) -> &'a [Layer<'a>] {
    let copied: Vec<Layer<'a>> = layers
        .iter()
        .map(|l| Layer {
            name: if l.name.is_empty() { "" } else { arena.alloc_str(l.name) },
            kind: match l.kind {
                Kind::Op(op) => Kind::Op(op),
                Kind::Sequential(inner) => Kind::Sequential(copy_tree(arena, inner)),
                Kind::Merge { merge, a, b } => Kind::Merge {
                    merge,
                    a: copy_tree(arena, a),
                    b: copy_tree(arena, b),
                },
                Kind::Misuse(what) => Kind::Misuse(what),
            },
        })
        .collect();
    arena.alloc_slice_copy(&copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::layer::*;

    static NET: [Layer; 3] = [conv2d(1, 4, 3).named("conv"), residual(&[relu()], &[]), flatten()];

    #[test]
    fn a_copy_is_equal_owns_its_names_and_is_freed_with_its_last_clone() {
        let name = String::from("conv");
        let body = vec![relu()];
        let local = vec![conv2d(1, 4, 3).named(&name), residual(&body, &[]), flatten()];
        let copy = Architecture::copy_of(&local);
        drop(local);
        drop(body);
        drop(name);
        assert_eq!(copy, Architecture::from_static(&NET));
        assert!(!copy.is_static() && Architecture::from_static(&NET).is_static());
        let weak = copy.downgrade().unwrap();
        let clone = copy.clone();
        drop(copy);
        assert!(weak.is_alive());
        assert_eq!(clone.layers()[0].name, "conv");
        drop(clone);
        assert!(!weak.is_alive());
    }

    #[test]
    fn architectures_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Architecture>();
        check::<super::super::Model>();
    }
}
