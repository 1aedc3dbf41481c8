# cellserver: every setup step lives here, so a fresh machine needs only `make run` or `make test`.
# The system Python when there is one: sandboxed kernels run as other uids and must be able to read the
# interpreter and its standard library (a Python under /root, e.g. pyenv's, is not readable by them).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CELL_PORT ?= 8080
export CELL_PORT

.PHONY: setup run test lint bench soak check clean chromium postgresql haproxy cluster reachable languages sage python-client bench-clients

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	$(BIN)/pip install -q -e '.[test]'
	@# autobahn's serialization extra brings bjdata, whose wheel was built against NumPy 1.x: importing it in every
	@# Crossbar worker printed NumPy's "compiled using NumPy 1.x" traceback. Built here against this NumPy, it loads
	@# quietly (and with its C extension). Without a compiler, the wheel stays and the warning with it.
	$(BIN)/pip install -q --force-reinstall --no-deps --no-build-isolation --no-binary bjdata --no-cache-dir "bjdata==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("bjdata"))')" \
	  || echo "make: bjdata could not be rebuilt against NumPy 2; its import will print NumPy's 1.x warning"
	touch $@

# The kernels' own Python environment (the spawner's kernel_python): what cells import, apart from the server's
# packages. Admins edit kernel-requirements.txt (pinned) or point kernel_python at an environment of their own.
KERNEL_VENV := .kernel-venv
$(KERNEL_VENV)/.installed: kernel-requirements.txt
	$(PYTHON) -m venv $(KERNEL_VENV)
	$(KERNEL_VENV)/bin/pip install -q -U pip
	$(KERNEL_VENV)/bin/pip install -q -r kernel-requirements.txt
	@# bash_kernel's kernelspec, in the environment's share/jupyter/kernels, where the spawner looks for languages.
	$(KERNEL_VENV)/bin/python -m bash_kernel.install --sys-prefix >/dev/null
	touch $@

# Kernels of other languages (docs/config.md, "Languages"). bash_kernel comes with `make setup` (kernel-requirements.txt);
# R's IRkernel is Debian's r-cran-irkernel, installed here as root (like chromium), its kernelspec registered into the
# kernels' environment. Without root, it says what to run and goes on: `make run` offers whatever kernels are there.
languages: $(KERNEL_VENV)/.installed
	@if ! Rscript -e 'quit(status = !requireNamespace("IRkernel", quietly = TRUE))' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends r-cran-irkernel \
	      || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends r-cran-irkernel)); \
	  else echo "make: R kernels need Debian's r-cran-irkernel: run 'sudo apt-get install r-cran-irkernel', then 'make languages'." >&2; fi; \
	fi
	@if [ ! -f $(KERNEL_VENV)/share/jupyter/kernels/ir/kernel.json ] && command -v R >/dev/null 2>&1; then \
	  (PATH=$(CURDIR)/$(KERNEL_VENV)/bin:$$PATH R --slave -e "IRkernel::installspec(prefix = '$(CURDIR)/$(KERNEL_VENV)')" \
	    && echo "make: registered IRkernel's kernelspec (ir) in $(KERNEL_VENV)") \
	  || echo "make: IRkernel's kernelspec could not be registered; R kernels are not offered" >&2; \
	fi

# Sage (docs/config.md, "Sage"): passagemath's binary wheels in an environment of their own (about 4.3 GB, 2-4 minutes
# here), from the system Python so that sandboxed kernels (other uids) can read it. The spawner forks `sagemath`
# kernels from a master that runs in it (SpawnerConfig.sage_python); without it, `make run` says how to get Sage.
SAGE_VENV := .sage-venv
$(SAGE_VENV)/.installed: sage-requirements.txt
	$(PYTHON) -m venv $(SAGE_VENV)
	$(SAGE_VENV)/bin/pip install -q -U pip
	$(SAGE_VENV)/bin/pip install -q -r sage-requirements.txt
	touch $@

sage: reachable $(SAGE_VENV)/.installed

# Jupyter's own clients (jupyter_server, JupyterLab, nbclient) and Kernel Gateway, for tests/test_jupyter_clients.py
# and the Jupyter-face bench: an environment of their own, since their pins clash with Crossbar's (idna and friends).
JUPYTER_VENV := .jupyter-venv
$(JUPYTER_VENV)/.installed: tests/jupyter-requirements.txt
	$(PYTHON) -m venv $(JUPYTER_VENV)
	$(JUPYTER_VENV)/bin/pip install -q -U pip
	$(JUPYTER_VENV)/bin/pip install -q -r tests/jupyter-requirements.txt
	touch $@

# The Python client library (clients/python), installed into the server's venv as users install it (pip, from the
# checkout), for its tests (tests/test_client_python.py) and bench/clients.py.
$(VENV)/.client-installed: $(VENV)/.installed clients/python/pyproject.toml $(wildcard clients/python/cellclient/*.py)
	$(BIN)/pip install -q ./clients/python
	touch $@

# The client with its MCP server (cellserver-mcp) and the official MCP client, for tests/test_mcp.py: an environment
# of its own, since mcp's dependencies (httpx, anyio: idna>=2.8) clash with Crossbar's pin of idna.
MCP_VENV := .mcp-venv
$(MCP_VENV)/.installed: clients/python/pyproject.toml $(wildcard clients/python/cellclient/*.py)
	$(PYTHON) -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install -q -U pip
	$(MCP_VENV)/bin/pip install -q './clients/python[mcp]'
	touch $@

python-client: $(VENV)/.client-installed $(MCP_VENV)/.installed

# The client libraries against raw autobahn in the same run (docs/benchmarks.md): what they add to a round trip.
bench-clients: setup python-client
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.clients

# The page's JavaScript comes from npm (web/package.json, locked), served as static files: nothing from a CDN.
# The widget manager (web/widgets/index.js) is bundled by esbuild into web/widgets/dist/.
web/node_modules/.installed: web/package.json web/package-lock.json $(wildcard web/widgets/*.js) $(wildcard web/sage3d/*.js)
	cd web && npm ci --no-audit --no-fund && npm run build
	touch $@

# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y chromium || (apt-get update && apt-get install -y chromium)); \
	  else echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium' and try again." >&2; exit 1; fi; \
	fi

# The PostgreSQL permalink tests start throwaway servers of their own (tests/postgres.py) from Debian's PostgreSQL
# programs; a cluster the package may set up and start is not used.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)); \
	  else echo "The PostgreSQL tests need Debian's postgresql: run 'sudo apt-get install postgresql' and try again." >&2; exit 1; fi; \
	fi

# The front of `make cluster` and of the cluster tests: Debian's HAProxy, started by them with a config of their own
# (deploy/haproxy.py); a service the package may start is not used.
haproxy:
	@if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy)); \
	  else echo "make cluster and its tests need Debian's haproxy: run 'sudo apt-get install haproxy' and try again." >&2; exit 1; fi; \
	fi

# Sandboxed kernels run as other uids and import from this checkout and its venv, so other users must be able
# to read the checkout and pass through every directory above it. As root (the full sandbox), grant exactly
# that where it is missing (o+rx on the checkout, o+x above it, never listing), and say so: a `mktemp -d`
# directory is 0700. Without it the spawner falls back to the reduced sandbox and warns.
reachable:
	@if [ "$$(id -u)" = 0 ]; then \
	  d="$(CURDIR)"; need=o+rx; \
	  while :; do \
	    if [ -z "$$(find "$$d" -maxdepth 0 -perm -$$need)" ]; then \
	      chmod $$need "$$d" && echo "make: $$need on $$d, so sandboxed kernels (other uids) can reach the project"; \
	    fi; \
	    [ "$$d" = / ] && break; d="$$(dirname "$$d")"; need=o+x; \
	  done; \
	fi

setup: reachable $(VENV)/.installed $(KERNEL_VENV)/.installed web/node_modules/.installed

# Start the node: router, session router and one local kernel spawner. Ctrl-C stops all of it.
run: setup
	PATH=$(BIN):$$PATH exec $(BIN)/crossbar start --cbdir .crossbar

# A deployment on this machine: HAProxy (TLS, a self-signed certificate made at start) on CELL_PORT in front of two
# nodes, permalinks in a throwaway PostgreSQL. Ctrl-C stops all of it. See docs/deploy.md.
cluster: setup haproxy postgresql
	PATH=$(BIN):$$PATH $(BIN)/python -m deploy.cluster --port $(CELL_PORT)

check: setup
	PATH=$(BIN):$$PATH $(BIN)/crossbar check --cbdir .crossbar

# Lint and format are part of the tests: `ruff format .` fixes what `--check` reports.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# thebe from npm (tests/thebe/package.json, locked) for tests/test_thebe.py: the bundle book pages load.
tests/thebe/node_modules/.installed: tests/thebe/package.json tests/thebe/package-lock.json
	cd tests/thebe && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

test: setup sage chromium postgresql haproxy languages lint $(JUPYTER_VENV)/.installed tests/thebe/node_modules/.installed python-client
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Jupyter Kernel Gateway, the third baseline, lives in a virtual environment of its own: its dependencies
# upgrade idna past crossbar's pin.
bench/.kg-venv/.installed:
	$(PYTHON) -m venv bench/.kg-venv
	bench/.kg-venv/bin/pip install -q jupyter_kernel_gateway ipykernel
	touch $@

# bench.burst (a class opening the page at once, N = 30 and 200), bench.sage (forked Sage kernels against cold ones),
# the replay of missed output (bench.durable), the HTTP API beside cell.execute (bench.http_api) and the client
# libraries beside raw autobahn (bench.clients, bench.clients_js) run even when bench.run failed; any failing fails.
bench: setup sage bench/.kg-venv/.installed $(JUPYTER_VENV)/.installed python-client clients/js/node_modules/.installed
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.run; status=$$?; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.burst || status=1; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.sage || status=1; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.durable || status=1; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.http_api || status=1; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.clients || status=1; \
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.clients_js || status=1; exit $$status

# Churn thousands of sessions through a node of its own and check that nothing leaks (docs/benchmarks.md, "Soak").
soak: setup
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) $(KERNEL_VENV) $(SAGE_VENV) *.egg-info .pytest_cache web/node_modules web/widgets/dist

# The JavaScript client (clients/js): its locked packages (npm autobahn for Node.js; pages get autobahn-browser from
# web/node_modules), for its tests (tests/test_client_js.py, part of make test) and bench/clients_js.py.
.PHONY: bench-clients-js
clients/js/node_modules/.installed: clients/js/package.json clients/js/package-lock.json
	cd clients/js && npm ci --omit=optional --ignore-scripts --no-audit --no-fund
	touch $@

test: clients/js/node_modules/.installed

# What the JavaScript client adds to raw autobahn.js: execute round trip and one-shot throughput (target: <= 10 %).
bench-clients-js: setup clients/js/node_modules/.installed
	PATH=$(BIN):$$PATH $(BIN)/python -m bench.clients_js
