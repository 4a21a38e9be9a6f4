import ModelKitCore
import Testing
@testable import ModelKitTraining

@Suite struct LossTests {
    @Test func matchesDoubleReference() throws {
        let logits = Batch(shape: [2, 3], values: [1, 2, 3, -1, 0, 0.5])
        let result = try SoftmaxCrossEntropy.compute(logits: logits, labels: [0, 2])
        // −log softmax in float64: row 0 label 0: 2.40760596; row 1 label 2: 0.60413061.
        #expect(abs(Double(result.loss) - (2.40760596 + 0.60413061) / 2) < 1e-6)
        #expect(result.correct == 1)
        // Each gradient row sums to zero.
        #expect(abs(result.gradient.values[0..<3].reduce(0, +)) < 1e-6)
    }

    @Test func stableOnHugeLogits() throws {
        let logits = Batch(shape: [2, 3], values: [3e38, -3e38, 0, 1000, -1000, 0])
        let right = try SoftmaxCrossEntropy.compute(logits: logits, labels: [0, 0])
        #expect(right.loss == 0)
        #expect(right.gradient.values.allSatisfy { $0.isFinite })
        let wrong = try SoftmaxCrossEntropy.compute(logits: Batch(shape: [1, 3], values: [1000, -1000, 0]), labels: [1])
        #expect(wrong.loss == 2000)
        #expect(wrong.gradient.values == [1, -1, 0])
    }

    @Test func rejectsBadLabels() {
        let logits = Batch(shape: [1, 3], values: [0, 0, 0])
        #expect(throws: TrainingError.labelOutOfRange(index: 0, label: 3, classes: 3)) {
            try SoftmaxCrossEntropy.compute(logits: logits, labels: [3])
        }
        #expect(throws: TrainingError.self) { try SoftmaxCrossEntropy.compute(logits: logits, labels: [0, 1]) }
    }
}

@Suite struct RandomGeneratorTests {
    @Test func matchesReferenceXoshiro256StarStar() throws {
        // First outputs of the reference C implementation from state {1, 2, 3, 4}.
        var rng = try RandomGenerator(stateWords: [1, 2, 3, 4])
        #expect([rng.next(), rng.next(), rng.next(), rng.next()] == [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
    }

    @Test func saveAndRestoreReproducesTheSequence() throws {
        var rng = RandomGenerator(seed: 2024)
        for _ in 0..<17 { _ = rng.next() }
        let saved = rng.stateWords
        let expected = (0..<100).map { _ in rng.next() }
        var restored = try RandomGenerator(stateWords: saved)
        #expect((0..<100).map { _ in restored.next() } == expected)
        #expect(RandomGenerator(seed: 1).stateWords != RandomGenerator(seed: 2).stateWords)
        #expect(throws: TrainingError.self) { try RandomGenerator(stateWords: [0, 0, 0, 0]) }
        #expect(throws: TrainingError.self) { try RandomGenerator(stateWords: [1, 2]) }
    }

    @Test func boundedDrawsAndShuffle() {
        var rng = RandomGenerator(seed: 9)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[rng.nextInt(below: 7)] += 1 }
        #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 })
        for _ in 0..<1000 {
            let f = rng.nextFloat()
            #expect(f >= 0 && f < 1)
        }
        var a = Array(0..<50), b = Array(0..<50)
        var r1 = RandomGenerator(seed: 4), r2 = RandomGenerator(seed: 4)
        r1.shuffle(&a)
        r2.shuffle(&b)
        #expect(a == b && a != Array(0..<50) && a.sorted() == Array(0..<50))
    }

    @Test func glorotUniformRange() {
        var rng = RandomGenerator(seed: 1)
        let values = Initializer.glorotUniform(count: 10_000, fanIn: 9, fanOut: 288, rng: &rng)
        let limit = (6.0 / 297.0).squareRoot()
        #expect(values.allSatisfy { abs(Double($0)) <= limit })
        #expect(values.max()! > Float(limit * 0.99) && values.min()! < -Float(limit * 0.99))
    }
}
