import Foundation
import OrionTestSupport
import Testing

/// `orion ingest`, `orion search` and `orion bench retrieval`, run as an operator runs them, on a
/// small BEIR-format folder written by the test.
@Suite struct RetrievalCLITests {
    let dir = TestPlugins.temporaryDirectory("orion-cli-retrieval")

    func run(_ arguments: [String]) async throws -> OrionCommand.Output { try await OrionCommand.run(arguments, in: dir) }

    /// Four documents and two queries with 4-d vectors; CRLF line ends, as BEIR files have.
    func writeDataset() throws -> String {
        let data = (dir as NSString).appendingPathComponent("set")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let corpus = [
            #"{"_id": "a", "title": "Orion nebula", "text": "Stars form in the Orion nebula.", "metadata": {"year": 2020}}"#,
            #"{"_id": "b", "title": "Crab nebula", "text": "A supernova remnant.", "metadata": {}}"#,
            #"{"_id": "c", "title": "Comets", "text": "Icy bodies with tails.", "metadata": {}}"#,
            #"{"_id": "d", "title": "Quasars", "text": "Bright galactic nuclei.", "metadata": {}}"#,
        ]
        try (corpus.joined(separator: "\r\n") + "\r\n").write(toFile: data + "/corpus.jsonl", atomically: true, encoding: .utf8)
        try (#"{"_id": "1", "text": "Where do stars form in Orion?"}"# + "\r\n" + #"{"_id": "2", "text": "comet tails"}"# + "\r\n")
            .write(toFile: data + "/queries.jsonl", atomically: true, encoding: .utf8)
        try "query-id\tcorpus-id\tscore\r\n1\ta\t1\r\n2\tc\t2\r\n".write(toFile: data + "/qrels.tsv", atomically: true, encoding: .utf8)
        try #"{"dim": 4}"#.write(toFile: data + "/meta.json", atomically: true, encoding: .utf8)
        func floats(_ rows: [[Float]]) -> Data { rows.flatMap { $0 }.withUnsafeBufferPointer { Data(buffer: $0) } }
        try floats([[1, 0, 0, 0], [0.7, 0.7, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).write(to: URL(fileURLWithPath: data + "/corpus.f32"))
        try floats([[0.9, 0.1, 0, 0], [0, 0, 1, 0.1]]).write(to: URL(fileURLWithPath: data + "/queries.f32"))
        return data
    }

    func writeDeployment() throws -> String {
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: vector\nplugin: vector-flat\n".write(toFile: pluginsD + "/vector.yaml", atomically: true, encoding: .utf8)
        try "id: fts\nplugin: fts-sqlite\n".write(toFile: pluginsD + "/fts.yaml", atomically: true, encoding: .utf8)
        try "id: hybrid\nplugin: hybrid-rrf\nconfig:\n  sources: [{ id: vector }, { id: fts }]\n".write(toFile: pluginsD + "/hybrid.yaml", atomically: true, encoding: .utf8)
        let config = (dir as NSString).appendingPathComponent("orion.yaml")
        try "dataDirectory: data\nplugins:\n  directory: plugins.d\n  watchIntervalSeconds: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    @Test func withoutVectorsTheTiersEngineEmbedsDocumentsAndQueries() async throws {
        let data = try writeDataset()
        let config = try writeDeployment()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try EmbedFiles.instanceYAML().write(toFile: pluginsD + "/embed.yaml", atomically: true, encoding: .utf8)
        try "tiers:\n  free:\n    capabilities: { retrieval: [hybrid, fts], embeddings: embed }\n"
            .write(toFile: pluginsD + "/tiers.yaml", atomically: true, encoding: .utf8)
        let ingest = try await run(["ingest", data + "/corpus.jsonl", "--tenant", "acme", "--config", config])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("embedded by 'embed'"), "\(ingest.stdout)")
        // No word in common with "Icy bodies with tails": the vector retriever finds it by meaning.
        let search = try await run(["search", "frozen objects trailing a plume", "--tenant", "acme", "--retriever", "vector", "--config", config])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.split(separator: "\n").first?.contains(" c ") == true, "\(search.stdout)")
        let textOnly = try await run(["ingest", data + "/corpus.jsonl", "--tenant", "plain", "--no-embed", "--config", config])
        #expect(textOnly.stdout.contains("without vectors"), "\(textOnly.stdout)")
    }

    @Test func embedBenchComparesWithThePythonPipelineAndEndsWithJSON() async throws {
        let root = EmbedFiles.root
        let texts = dir + "/texts.jsonl"
        try (0..<8).map { #"{"text": "sentence number \#($0) about embeddings"}"# }.joined(separator: "\n")
            .write(toFile: texts, atomically: true, encoding: .utf8)
        // From the repository, as an operator runs it: the default deployment's engine, scripts/ and .deps/.
        let bench = try await OrionCommand.run(["bench", "embed", "--texts", texts, "--count", "8", "--rounds", "1", "--json"], in: root)
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("batch 32, 2 threads"), "\(bench.stdout)")
        #expect(!bench.stdout.contains("baseline unavailable"), "\(bench.stdout)")
        let json = try #require(bench.lastJSON(as: [String: Double].self))
        for key in ["eps_batch1_t1", "eps_batch32_t1", "eps_batch1_t2", "eps_batch32_t2", "load_s", "rss_mb", "python_eps_batch1_t1", "python_eps_batch32_t2"] {
            #expect((json[key] ?? 0) > 0, "\(key)")
        }
        let missing = try await OrionCommand.run(["bench", "embed", "--texts", dir + "/absent.jsonl"], in: root)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("--texts"), "\(missing.stderr)")
    }

    @Test func costPricesACallWithTheDeploymentsTable() async throws {
        // From the repository: the shipped plugins.d, tiers.yaml and pricing table.
        let priced = try await OrionCommand.run(["cost", "--model", "gpt-4o-mini-2024-07-18", "--input", "1000000", "--output", "1000000"], in: EmbedFiles.root)
        #expect(priced.status == 0, "\(priced.stderr)")
        #expect(priced.stdout.contains("0.750000000 USD (750000000 nano-USD)"), "\(priced.stdout)")
        let unknown = try await OrionCommand.run(["cost", "--model", "my-finetune", "--input", "10"], in: EmbedFiles.root)
        #expect(unknown.status == 1)
        #expect(unknown.stdout.contains("unpriced"), "\(unknown.stdout)")
    }

    @Test func usageBenchPersistsEveryRecordAndEndsWithJSON() async throws {
        let config = try writeDeployment()
        let bench = try await run(["bench", "usage", "--records", "2000", "--json", "--config", config])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("dropped            0"), "\(bench.stdout)")
        let json = try #require(bench.lastJSON(as: [String: Double].self))
        for key in ["records_per_s", "record_p50_ns", "record_p99_ns", "record_max_ns"] { #expect((json[key] ?? 0) > 0, "\(key)") }
    }

    @Test func ingestThenSearch() async throws {
        let data = try writeDataset()
        let config = try writeDeployment()
        let ingest = try await run(["ingest", data + "/corpus.jsonl", "--vectors", data + "/corpus.f32", "--tenant", "acme", "--config", config])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("stored 4 documents for tenant 'acme'"))
        #expect(ingest.stderr.contains("4/4"), "a progress line")

        let search = try await run(["search", "orion stars", "--tenant", "acme", "--retriever", "fts", "--config", config])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.split(separator: "\n").first?.contains(" a ") == true, "\(search.stdout)")

        let filtered = try await run(["search", "nebula", "--tenant", "acme", "--retriever", "fts", "--filter", "year=2020", "--config", config])
        #expect(filtered.stdout.contains(" a "))
        #expect(!filtered.stdout.contains(" b "))

        let other = try await run(["search", "orion", "--tenant", "someone-else", "--retriever", "fts", "--config", config])
        #expect(other.stdout.contains("no results"))

        let hybrid = try await run(["search", "orion", "--tenant", "acme", "--retriever", "hybrid", "--config", config])
        #expect(hybrid.stdout.contains("degraded:"), "no query vector: the vector source is left out")

        let bad = try await run(["search", "orion", "--tenant", "acme", "--retriever", "fts", "--filter", "year", "--config", config])
        #expect(bad.status != 0)
    }

    @Test func benchRetrievalReportsQualityAndEndsWithJSON() async throws {
        let data = try writeDataset()
        let config = try writeDeployment()
        for retriever in ["vector", "hybrid"] {
            let output = try await run(["bench", "retrieval", data, "--retriever", retriever, "--json", "--config", config])
            #expect(output.status == 0, "\(output.stderr)")
            let object = try #require(output.lastJSON(as: [String: Double].self))
            for key in ["ndcg_at_10", "recall_at_100", "qps", "build_seconds", "rss_mb"] { #expect(object[key] != nil, "\(key)") }
            #expect(object["ndcg_at_10"] == 1, "\(retriever): both queries find their relevant document first")
            #expect(object["recall_at_100"] == 1)
        }
        // Agreement with an exact instance: the hybrid's top 10 holds all four documents exact search ranks.
        let against = try await run(["bench", "retrieval", data, "--retriever", "hybrid", "--exact", "vector", "--json", "--config", config])
        #expect(against.stdout.contains("recall@10 against 'vector' (exact): 1.0000"), "\(against.stdout)")
        let againstJSON = try #require(against.lastJSON(as: [String: Double].self))
        #expect(againstJSON["recall_at_10_vs_exact"] == 1)
        let unknown = try await run(["bench", "retrieval", data, "--retriever", "nope", "--config", config])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no instance 'nope'"))
    }

    /// Exact against HNSW on random vectors: with efSearch above the corpus size the graph search
    /// visits everything, so its recall must be 1; with a tiny efSearch on random data it drops.
    @Test func syntheticBenchComparesExactAndHNSW() async throws {
        let config = try writeDeployment()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try "id: hnsw\nplugin: vector-hnsw\nconfig: { M: 8, efConstruction: 40, efSearch: 10 }\n".write(toFile: pluginsD + "/hnsw.yaml", atomically: true, encoding: .utf8)
        func bench(_ extra: [String]) async throws -> [String: Double] {
            let output = try await run(["bench", "retrieval", "--synthetic", "400", "--synthetic-queries", "30", "--dimensions", "32", "--json", "--config", config] + extra)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(output.stdout.contains("recall@10 vs exact"))
            return try #require(output.lastJSON(as: [String: Double].self))
        }
        let thorough = try await bench(["--ef-search", "500"])
        #expect(thorough["hnsw_recall_at_10"] == 1)
        for key in ["flat_qps", "hnsw_qps", "flat_build_seconds", "hnsw_build_seconds", "flat_rss_mb", "hnsw_rss_mb", "hnsw_speedup"] {
            #expect(thorough[key] != nil, "\(key)")
        }
        let hasty = try await bench(["--ef-search", "1"])
        #expect(try #require(hasty["hnsw_recall_at_10"]) < 1)
        // Near a 4-dimensional subspace the graph has structure to follow: the same small
        // efSearch finds more of the exact top 10 than on full-rank noise.
        let noise = try await bench(["--ef-search", "4"])
        let structured = try await bench(["--ef-search", "4", "--intrinsic-dimensions", "4"])
        #expect(structured["intrinsic_dimensions"] == 4 && noise["intrinsic_dimensions"] == 32)
        #expect(try #require(structured["hnsw_recall_at_10"]) > (try #require(noise["hnsw_recall_at_10"])))
        let tooMany = try await run(["bench", "retrieval", "--synthetic", "400", "--intrinsic-dimensions", "33", "--dimensions", "32", "--config", config])
        #expect(tooMany.status != 0)
        #expect(tooMany.stderr.contains("between 1 and --dimensions (32)"))

        let mixed = try await run(["bench", "retrieval", "--synthetic", "400", "--retriever", "vector", "--config", config])
        #expect(mixed.status != 0)
        #expect(mixed.stderr.contains("drop the folder and --retriever"))
    }

    @Test func memrlBenchPrintsLearningCurves() async throws {
        let config = try writeDeployment()
        let output = try await run(["bench", "memrl", "--intents", "6", "--episodes", "4", "--json", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("episode  similarity default    paper"))
        let object = try #require(output.lastJSON(as: [String: [String: Any]].self))
        #expect(object["similarity"]?["final_good_first_share"] as? Double == 0)
        #expect(object["default"]?["final_good_first_share"] as? Double == 1)
        #expect((object["paper"]?["curve"] as? [Double])?.count == 4)

        let wrong = try await run(["bench", "memrl", "--retriever", "nope", "--config", config])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("no instance 'nope'"))
    }

    @Test func chatBenchComparesOrionWithTheUpstreamCalledDirectly() async throws {
        let config = try writeDeployment()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try "id: ratelimit\nplugin: ratelimit-gcra\n".write(toFile: pluginsD + "/ratelimit.yaml", atomically: true, encoding: .utf8)
        let output = try await run(["bench", "gateway", "--chat", "--requests", "100", "--concurrency", "2", "--rounds", "1", "--json", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("orion adds"))
        // Every call through Orion left one usage record: warm-up, latency and throughput passes.
        #expect(output.stdout.contains("usage records written: 300"))
        let object = try #require(output.lastJSON(as: [String: Double].self))
        for key in ["direct_rps", "orion_rps", "direct_p50_ms", "orion_p50_ms", "added_p50_ms", "added_p99_ms"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect(try #require(object["orion_rps"]) > 0)
    }

    @Test func gatewayBenchComparesTheChainWithTheFloor() async throws {
        let config = try writeDeployment()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try "id: ratelimit\nplugin: ratelimit-gcra\n".write(toFile: pluginsD + "/ratelimit.yaml", atomically: true, encoding: .utf8)
        let output = try await run(["bench", "gateway", "--requests", "100", "--concurrency", "2", "--memories", "20", "--rounds", "1", "--json", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("the chain adds"))
        let object = try #require(output.lastJSON(as: [String: Double].self))
        for key in ["floor_rps", "chain_rps", "search_rps", "floor_p50_ms", "chain_p50_ms", "chain_p99_ms", "added_p50_ms"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect(try #require(object["chain_p50_ms"]) > 0)
        let wrong = try await run(["bench", "gateway", "--limiter", "nope", "--config", config])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("no instance 'nope'"))
    }

    @Test func tokenMintsAVerifiableTokenWithTheDevelopmentSecret() async throws {
        let config = try writeDeployment()
        let output = try await run(["token", "--tenant", "acme", "--user", "ann", "--roles", "member,analyst", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
        let parts = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".")
        #expect(parts.count == 3)
        var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while payload.count % 4 != 0 { payload += "=" }
        let decoded = try #require(Data(base64Encoded: payload))
        let claims = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
        #expect(claims["tenant"] as? String == "acme")
        #expect(claims["sub"] as? String == "ann")
        #expect(claims["roles"] as? [String] == ["member", "analyst"])
        #expect(claims["iss"] as? String == "orion")
        #expect(FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("data/jwt-dev-secret")))
        let bad = try await run(["token", "--tenant", "no spaces", "--config", config])
        #expect(bad.status != 0)
    }
}
