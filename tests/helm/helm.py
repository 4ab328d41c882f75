"""Helm's real engine (Helm 4's Go SDK, through the helm-python-sdk package) for the chart
tests in tests/helm.rs: `helm.py render|lint|validate CHART VALUES_JSON [NAMESPACE [RELEASE]]` prints a
JSON object; a Helm error is printed as {"error": "..."} with exit code 1."""

import json
import sys

import helm_python as helm


def main() -> int:
    command, chart_dir, values_json = sys.argv[1:4]
    namespace = sys.argv[4] if len(sys.argv) > 4 else "serin-system"
    release = sys.argv[5] if len(sys.argv) > 5 else "serin"
    values = json.loads(values_json)
    try:
        if command == "render":
            chart = helm.Chart.load(chart_dir)
            # An install validates the values against values.schema.json first, as here.
            chart.validate_schema(values)
            manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
            result = {"manifests": manifests, "crds": [c["data"] for c in chart.crds]}
        elif command == "lint":
            result = helm.lint(chart_dir, values, strict=True, namespace=namespace)
        elif command == "validate":
            helm.Chart.load(chart_dir).validate_schema(values)
            result = {"valid": True}
        else:
            raise SystemExit(f"unknown command {command}")
    except helm.HelmError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
