#!/usr/bin/env python3
"""Line coverage per module from a `swift test --enable-code-coverage` run.

Prints one line per module (Swift target folder) and one per area (Runtime, PluginSDK, Plugins),
and exits non-zero when Runtime or PluginSDK is below the threshold.

usage: coverage.py BUILD_DIR [--min 80]
"""
import glob
import json
import os
import shutil
import subprocess
import sys

def toolchain_tool(name):
    """`name` from the Swift toolchain that built the profile (a distribution's older llvm-cov
    cannot read the instrumented C and C++ plugins), else whatever `name` is on PATH."""
    swift = shutil.which("swift")
    if swift:
        candidate = os.path.join(os.path.dirname(os.path.realpath(swift)), name)
        if os.access(candidate, os.X_OK):
            return candidate
    return name

def main():
    build = sys.argv[1]
    minimum = float(sys.argv[sys.argv.index("--min") + 1]) if "--min" in sys.argv else 80.0
    root = os.getcwd()
    profdata = os.path.join(build, "codecov", "default.profdata")
    binaries = sorted(glob.glob(os.path.join(build, "*PackageTests.xctest")))
    if not os.path.exists(profdata) or not binaries:
        print(f"coverage: no profile data under {build}; run swift test --enable-code-coverage first", file=sys.stderr)
        return 2
    objects = binaries[1:] + sorted(glob.glob(os.path.join(build, "lib*.so")))
    orion = os.path.join(build, "orion")
    if os.path.exists(orion):
        objects.append(orion)
    llvm_cov = os.environ.get("LLVM_COV") or toolchain_tool("llvm-cov")
    command = [llvm_cov, "export", "-summary-only", f"-instr-profile={profdata}", binaries[0]]
    for obj in objects:
        command += ["-object", obj]
    data = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    modules = {}
    for entry in data["data"][0]["files"]:
        path = os.path.relpath(entry["filename"], root)
        if path.startswith("..") or path.startswith(".build") or path.startswith("Tests/"):
            continue
        parts = path.split(os.sep)
        module = os.sep.join(parts[:2]) if parts[0] != "Plugins" else os.sep.join(parts[:2])
        lines = entry["summary"]["lines"]
        covered, count = modules.get(module, (0, 0))
        modules[module] = (covered + lines["covered"], count + lines["count"])

    areas = {}
    print("line coverage by module")
    for module in sorted(modules):
        covered, count = modules[module]
        print(f"  {module:32} {100.0 * covered / max(count, 1):6.1f}%  ({covered}/{count} lines)")
        area = module.split(os.sep)[0]
        c, n = areas.get(area, (0, 0))
        areas[area] = (c + covered, n + count)
    failed = False
    print("line coverage by area")
    for area in sorted(areas):
        covered, count = areas[area]
        percent = 100.0 * covered / max(count, 1)
        gate = area in ("Runtime", "PluginSDK")
        verdict = "" if not gate else ("ok" if percent >= minimum else f"BELOW {minimum:.0f}%")
        failed |= gate and percent < minimum
        print(f"  {area:32} {percent:6.1f}%  {verdict}")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
