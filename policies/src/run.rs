//! [`RunPolicy`]: the policy of a run, typed where training needs it.

use crate::lm::{self, LmPolicy};
use rlvr_engine::registry::Kind;
use rlvr_engine::{Config, Policy, PolicyContext, Registry, RegistryError};

/// The policy of a run: the engine's [`Policy`] for rollouts and evaluations, and the
/// [`LmPolicy`] itself when it is one this crate can train.
///
/// ## Design
/// Training needs the concrete language model (its weights, tokenizer and sampling options);
/// rollouts need only the engine's [`Policy`]. The registry builds a `Box<dyn Policy>`, which
/// forgets the concrete type, and getting it back used to take a downcast through `Any` that
/// the engine's trait had to offer (`Policy::as_any_mut`). Instead a run builds its policy with
/// [`RunPolicy::build`]: an id this crate trains (`lm/llama-v0`) is built as the type it is, by
/// the same function its registry entry calls ([`lm::build`]), so the two cannot drift apart;
/// any other id is built by the registry. Training reaches the model through
/// [`RunPolicy::trainable`], a `match`, and the engine's `Policy` trait knows nothing of
/// training.
///
/// An enum rather than a trait for "trainable": there is one trainable type, and the trainers
/// work on its model, so a trait would have one implementation and a method that hands back
/// that type. The registry still decides which ids exist: an id it does not list is unknown here
/// too. An id this crate trains is built here even when a registry registered another builder
/// under it.
pub enum RunPolicy {
    /// A language model this crate can train.
    Trainable(Box<LmPolicy>),
    /// Any other policy: it rolls out and is evaluated, but cannot be updated.
    Fixed(Box<dyn Policy>),
}

impl RunPolicy {
    /// Builds the policy `id` from its config and the run's context, with the errors
    /// [`Registry::make_policy`] gives.
    pub fn build(registry: &Registry, id: &str, config: &Config, ctx: &PolicyContext) -> Result<Self, RegistryError> {
        let registered = registry.list().iter().any(|&(kind, known, _)| kind == Kind::Policy && known == id);
        if registered && id == lm::ID {
            let built = lm::build(config, ctx);
            return built.map(|lm| Self::Trainable(Box::new(lm))).map_err(|source| RegistryError::Build {
                kind: Kind::Policy,
                id: id.into(),
                source,
            });
        }
        registry.make_policy(id, config, ctx).map(Self::Fixed)
    }

    /// The language model to train, if this policy is one.
    pub fn trainable(&mut self) -> Option<&mut LmPolicy> {
        match self {
            Self::Trainable(lm) => Some(lm.as_mut()),
            Self::Fixed(_) => None,
        }
    }
}

impl AsRef<dyn Policy> for RunPolicy {
    fn as_ref(&self) -> &(dyn Policy + 'static) {
        match self {
            Self::Trainable(lm) => lm.as_ref(),
            Self::Fixed(p) => p.as_ref(),
        }
    }
}

impl AsMut<dyn Policy> for RunPolicy {
    fn as_mut(&mut self) -> &mut (dyn Policy + 'static) {
        match self {
            Self::Trainable(lm) => lm.as_mut(),
            Self::Fixed(p) => p.as_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::{GoldPlayer, Message, Task};
    use std::sync::Arc;

    fn ctx() -> PolicyContext {
        let gold: GoldPlayer = Arc::new(|_: &Task, _: &[Message]| Ok("42".to_string()));
        PolicyContext { seed: 1, gold: Some(gold) }
    }

    #[test]
    fn the_language_model_is_trainable_and_other_policies_are_not() {
        let mut registry = Registry::new();
        crate::register(&mut registry);
        let mut micro = Config::new();
        micro.insert("preset".into(), "micro".into());
        let mut lm = RunPolicy::build(&registry, lm::ID, &micro, &ctx()).unwrap();
        assert!(lm.trainable().is_some());
        assert!(!lm.as_mut().encode(&[Message::user("hi")], true).unwrap().is_empty());
        let mut scripted = RunPolicy::build(&registry, "scripted/gold-v0", &Config::new(), &ctx()).unwrap();
        assert!(scripted.trainable().is_none());
    }

    #[test]
    fn errors_are_the_registrys() {
        let mut registry = Registry::new();
        crate::register(&mut registry);
        let mut bad = Config::new();
        bad.insert("preset".into(), "micro".into());
        bad.insert("temprature".into(), 1.0.into());
        let err = RunPolicy::build(&registry, lm::ID, &bad, &ctx()).err().unwrap();
        let made = registry.make_policy(lm::ID, &bad, &ctx()).err().unwrap();
        assert!(matches!(err, RegistryError::Build { .. }) && err.to_string().contains("temprature"), "{err}");
        assert_eq!(err.to_string(), made.to_string());
        // A registry without the language model does not know its id.
        let empty = Registry::new();
        let err = RunPolicy::build(&empty, lm::ID, &Config::new(), &ctx()).err().unwrap();
        assert!(matches!(err, RegistryError::Unknown { .. }), "{err}");
    }
}
