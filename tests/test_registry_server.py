import urllib.request


def test_registry_fixture_serves_the_v2_api(registry):
    with urllib.request.urlopen(f"{registry.url}/v2/", timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert registry.host.startswith("127.0.0.1:")
