// A minimal gzip IDX reader and a real training run, so the benchmark can check the math end to
// end (accuracy) and time whole epochs. The product's dataset readers live in ModelKitData.
import CZlib
import ModelKitTraining

enum BenchmarkDataError: Error, CustomStringConvertible {
    case cannotOpen(String)
    case malformed(String)
    var description: String {
        switch self {
        case .cannotOpen(let path): return "\(path): cannot open"
        case .malformed(let reason): return "malformed IDX: \(reason)"
        }
    }
}

func readGzip(_ path: String) throws -> [UInt8] {
    guard let file = gzopen(path, "rb") else { throw BenchmarkDataError.cannotOpen(path) }
    defer { gzclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if count < 0 { throw BenchmarkDataError.malformed("\(path): gzip read failed") }
        if count == 0 { break }
        bytes += chunk[0..<Int(count)]
    }
    return bytes
}

func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> Int {
    Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
}

/// Images scaled to [0, 1] as [count, 28, 28, 1] floats, and labels.
func loadIDX(images: String, labels: String) throws -> (pixels: [Float], labels: [Int32], count: Int) {
    let imageBytes = try readGzip(images), labelBytes = try readGzip(labels)
    guard imageBytes.count >= 16, bigEndian32(imageBytes, 0) == 0x803, labelBytes.count >= 8,
          bigEndian32(labelBytes, 0) == 0x801 else { throw BenchmarkDataError.malformed("bad magic") }
    let count = bigEndian32(imageBytes, 4)
    let (rows, cols) = (bigEndian32(imageBytes, 8), bigEndian32(imageBytes, 12))
    guard rows == 28, cols == 28, imageBytes.count == 16 + count * 784, bigEndian32(labelBytes, 4) == count,
          labelBytes.count == 8 + count else { throw BenchmarkDataError.malformed("sizes") }
    let pixels = imageBytes[16...].map { Float($0) / 255 }
    return (pixels, labelBytes[8...].map { Int32($0) }, count)
}

/// Trains seed-cnn with Adam (Keras defaults), batch 32, for `epochs`, reporting time and accuracy.
func trainFashionMNIST(epochs: Int, directory: String) throws {
    let train = try loadIDX(images: "\(directory)/train-images-idx3-ubyte.gz",
                            labels: "\(directory)/train-labels-idx1-ubyte.gz")
    let test = try loadIDX(images: "\(directory)/t10k-images-idx3-ubyte.gz", labels: "\(directory)/t10k-labels-idx1-ubyte.gz")
    let network = try Network.seedCNN(seed: 1)
    let optimizer = Adam(learningRate: 1e-3)
    var shuffler = RandomGenerator(seed: 2)
    var order = Array(0..<train.count)
    let batchSize = 32
    var totalTime = 0.0
    for epoch in 1...epochs {
        shuffler.shuffle(&order)
        let start = now()
        var lossSum = 0.0, correct = 0, steps = 0
        var batchPixels = [Float](repeating: 0, count: batchSize * 784)
        var batchLabels = [Int32](repeating: 0, count: batchSize)
        var first = 0
        while first < train.count {
            let size = min(batchSize, train.count - first)
            if batchPixels.count != size * 784 {
                batchPixels = [Float](repeating: 0, count: size * 784)
                batchLabels = [Int32](repeating: 0, count: size)
            }
            for b in 0..<size {
                let index = order[first + b]
                for p in 0..<784 { batchPixels[b * 784 + p] = train.pixels[index * 784 + p] }
                batchLabels[b] = train.labels[index]
            }
            let logits = try network.forward(Batch(shape: [size, 28, 28, 1], values: batchPixels), training: true)
            let loss = try SoftmaxCrossEntropy.compute(logits: logits, labels: batchLabels)
            try network.backward(loss.gradient)
            try optimizer.step(network.trainableParameters)
            lossSum += Double(loss.loss)
            correct += loss.correct
            steps += 1
            first += size
        }
        let seconds = now() - start
        totalTime += seconds
        var testCorrect = 0
        var offset = 0
        while offset < test.count {
            let size = min(500, test.count - offset)
            let batch = Batch(shape: [size, 28, 28, 1], values: Array(test.pixels[(offset * 784)..<((offset + size) * 784)]))
            let logits = try network.forward(batch, training: false)
            testCorrect += try SoftmaxCrossEntropy.compute(logits: logits, labels: Array(test.labels[offset..<(offset + size)])).correct
            offset += size
        }
        print("epoch \(epoch): \(format3(seconds)) s (\(format3(seconds / Double(steps) * 1e3)) ms/step), loss \(format3(lossSum / Double(steps))), train acc \(format3(Double(correct) / Double(train.count))), test acc \(format3(Double(testCorrect) / Double(test.count)))")
    }
    print("training time \(format3(totalTime)) s for \(epochs) epoch(s), \(Parallelism.threadCount) threads, kernels \(KernelPath.active)")
}
