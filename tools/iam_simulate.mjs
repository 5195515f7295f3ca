// Evaluates IAM requests with @cloud-copilot/iam-simulate, for tests/iam (tests/support/iam_simulator.py runs it).
// Usage: node tools/iam_simulate.mjs <folder where `make iam-simulator` installed the simulator>
// Reads {"simulations": [<iam-simulate Simulation>, ...]} on stdin; writes one verdict per simulation, in order:
// {"result": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "Error", "grants": [...], "denials": [...],
//  "errors": ...}. The simulator is loaded from that folder, never from this repository (it is AGPL-licensed).
import { createRequire } from 'node:module'
import { resolve } from 'node:path'

const folder = process.argv[2]
if (!folder) {
  process.stderr.write('usage: node tools/iam_simulate.mjs <simulator folder>\n')
  process.exit(2)
}
const require = createRequire(resolve(folder, 'package.json'))
const { runSimulation, getGrantReasons, getDenialReasons } = require('@cloud-copilot/iam-simulate')

let input = ''
for await (const chunk of process.stdin) input += chunk
const { simulations } = JSON.parse(input)

const verdicts = []
for (const simulation of simulations) {
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    verdicts.push({ result: 'Error', grants: [], denials: [], errors: response.errors })
    continue
  }
  // A concrete resource ARN is one simulation; a pattern would be several, and every one must agree.
  const analyses =
    response.resultType === 'single' ? [response.result.analysis] : response.results.map((r) => r.analysis)
  verdicts.push({
    result: response.overallResult,
    grants: analyses.flatMap((analysis) => getGrantReasons(analysis)),
    denials: analyses.flatMap((analysis) => getDenialReasons(analysis)),
    errors: null,
  })
}
process.stdout.write(JSON.stringify(verdicts))
