"""Publishing: Grafana dashboards and alert rules as code, generated files and the assets that publish them."""
