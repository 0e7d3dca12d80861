// A small but complete routing policy shared by the router's unit tests:
// four tiers, a code model, a tool model with two replicas, two cloud models,
// and rules for PII, tools, priority, complexity and a catch-all.
#ifndef TIERMESH_TESTS_UNIT_ROUTER_TEST_POLICY_H_
#define TIERMESH_TESTS_UNIT_ROUTER_TEST_POLICY_H_

namespace tiermesh::router::testing {

inline constexpr char kTestPolicyYaml[] = R"yaml(
name: test
classifier: {endpoint: "127.0.0.1:50051"}
defaults: {max_tokens: 256}
tiers:
  - {name: local_fast, location: local}
  - {name: local_tool, location: local}
  - {name: cloud_cheap, location: cloud}
  - {name: cloud_premium, location: cloud}
backends:
  - name: tiny
    tier: local_fast
    endpoints: ["127.0.0.1:50052"]
    model: tiny
    price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    capabilities: {tools: false, max_context_tokens: 4096}
  - name: tiny-coder
    tier: local_fast
    endpoints: ["127.0.0.1:50062"]
    model: tiny-coder
    price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    capabilities: {tools: false, max_context_tokens: 4096, code: true, streaming: false}
  - name: tool-local
    tier: local_tool
    endpoints: ["127.0.0.1:50054", "127.0.0.1:50055"]
    model: tool-7b
    price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    capabilities: {tools: true, max_context_tokens: 8192}
  - name: cheap
    tier: cloud_cheap
    endpoints: ["127.0.0.1:50053"]
    model: cloud-cheap
    price: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
    capabilities: {tools: true, max_context_tokens: 128000}
  - name: premium
    tier: cloud_premium
    endpoints: ["127.0.0.1:50053"]
    model: cloud-premium
    price: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}
    capabilities: {tools: true, max_context_tokens: 200000}
fallback_chains:
  local_fast: [cloud_cheap, cloud_premium]
rules:
  - {name: pii-local, when: {pii: true}, tier: local_fast, local_only: true}
  - {name: tools, when: {task: [tool]}, tier: local_tool}
  - {name: offered-tools, when: {tools_offered: true}, tier: local_tool}
  - {name: quality, when: {priority: [quality]}, tier: cloud_premium}
  - {name: hard, when: {min_complexity: 0.7}, tier: cloud_premium}
  - {name: medium, when: {min_complexity: 0.4, max_complexity: 0.7}, tier: cloud_cheap}
  - {name: default, tier: local_fast}
user_tiers:
  free: {max_tier: cloud_cheap}
resilience:
  max_extra_fallback_cost_usd: 1
budgets:
  global_daily_usd: 100
callers:
  allow_anonymous: true
)yaml";

}  // namespace tiermesh::router::testing

#endif  // TIERMESH_TESTS_UNIT_ROUTER_TEST_POLICY_H_
