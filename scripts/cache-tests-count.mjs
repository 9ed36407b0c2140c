// Counts http-cache-tests results the way the published tables do: each
// test's result type from determineTestResult, over tests/index.mjs without
// browser_only tests. Usage: node cache-tests-count.mjs <package dir> <results.json>
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [pkg, resultsFile] = process.argv.slice(2)
const load = p => import(pathToFileURL(path.join(pkg, p)).href)
const tests = (await load('tests/index.mjs')).default
let determineTestResult
try {
  determineTestResult = (await load('test-engine/lib/results.mjs')).determineTestResult
} catch {
  determineTestResult = (await load('lib/display.mjs')).determineTestResult
}
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
const counts = {}
const failed = []
for (const suite of tests) {
  for (const test of suite.tests) {
    if (test.browser_only) continue
    const r = determineTestResult(tests, test.id, results)
    const name = { '✅': 'pass', '⛔️': 'fail', '⚠️': 'optional_fail', Y: 'yes', N: 'no', '🔹': 'setup_fail', '⁉️': 'harness_fail', '⚪️': 'dependency_fail', '↻': 'retry', '-': 'untested' }[r[2]] || r[2]
    counts[name] = (counts[name] || 0) + 1
    if (name === 'fail' || name === 'setup_fail' || name === 'harness_fail') failed.push(`${name} ${test.id}`)
  }
}
console.log(JSON.stringify(counts))
for (const f of failed) console.log(f)
