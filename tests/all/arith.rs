//! The arithmetic environment through the registry, as a user's experiment would build it.

use rlvr::engine::Config;
use rlvr::engine::testing::{Checks, assert_conformance};

#[test]
fn arith_passes_conformance_single_and_multi_turn() {
    let registry = rlvr::builtin_registry();
    for cfg in ["", "attempts = 3\nmax_digits = 6\nops = [\"+\", \"-\", \"*\"]"] {
        let config: Config = toml::from_str(cfg).unwrap();
        let spec = registry.make_env("arith/arith-v0", &config, 11).unwrap();
        let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
        assert_conformance(&spec, &rubric, &Checks::default());
    }
}
