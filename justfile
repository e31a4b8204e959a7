# Developer recipes. A convenience only: every recipe is a plain cargo
# command, and the README's two commands need nothing but cargo.

set export

# The main job on the built-in simulators (same as the README's first
# command); the simulators are only in a build with the `demo` feature.
demo *ARGS:
    cargo run --release --features demo -- demo {{ARGS}}

# Every test (same as the README's second command and .ci/run).
test:
    cargo test

# The release binary, with the TAP component embedded and no simulators
# (`demo` is a feature, off here). `-p`: only the connector's own features
# in shared crates, not the simulators' (README, "Install").
build:
    cargo build --release -p tq-conn-proofpoint-tap

# The TAP component alone, as a wasm32-wasip2 component.
component:
    cargo build -p tap-component --target wasm32-wasip2 --release

# The benchmark: prints the figures of docs/performance.md and writes them
# to target/bench.json (ratios measured in one run).
bench:
    cargo bench -p tq-conn-proofpoint-tap --bench pipeline

# Formatting and lints for the native crates and the component.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    cargo clippy -p tq-conn-proofpoint-tap -- -D warnings
    cargo clippy -p tap-component --target wasm32-wasip2 -- -D warnings

fmt:
    cargo fmt --all
