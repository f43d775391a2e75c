import pytest

from mongo_sidecar import MongoSidecar
from support import ScriptedServer, Sidecar

CLIENT_ENV = ("MONGO_SIDECAR_TOKEN", "AWS_SESSION_TOKEN", "MONGO_SIDECAR_SOCKET", "MONGO_SIDECAR_HOST",
              "MONGO_SIDECAR_PORT")


@pytest.fixture(scope="session")
def sidecar():
    """One sidecar for the session; it must exit 0 on SIGTERM at the end."""
    running = Sidecar()
    yield running
    assert running.stop() == 0, f"the sidecar did not exit 0 on SIGTERM:\n{running.log()}"


@pytest.fixture(autouse=True)
def clean_client_env(monkeypatch):
    """Each test starts with none of the client's environment variables set."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(sidecar):
    with MongoSidecar(port=sidecar.port, token=sidecar.token, timeout=10) as c:
        yield c


@pytest.fixture
def coll(client, request):
    """An empty collection named after the test."""
    name = request.node.name.replace("[", "_").replace("]", "")[:100]
    collection = client.db("client_py").collection(name)
    collection.delete_many({})
    return collection


@pytest.fixture
def scripted():
    """scripted(*answers) -> a ScriptedServer of the test's own, closed after it."""
    servers = []

    def start(*answers):
        servers.append(ScriptedServer(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
