import ModelKitCore
import ModelKitData

/// Calibration samples for `quantize`: the first N images of an IDX dataset directory (its train
/// split), of an IDX images file, or of a .npy array, normalised like `run` does, in batches.
enum CalibrationData {
    static func load(path: String, samples: Int, batch: Int, model: Model) throws -> [Tensor] {
        let input: ModelInput
        if FileSystem.isDirectory(path) {
            let dataset = try IDXDataset.load(directory: path, split: .train)
            let count = min(samples, dataset.count)
            guard count > 0 else { throw CommandFailure.data("calibration data \(path) holds no images") }
            input = try ModelInput.fromPixels((0..<count).map { Array(dataset.image($0)) }, height: dataset.rows,
                                              width: dataset.columns, channels: 1, names: [], model: model, source: path)
        } else if path.lowercased().hasSuffix(".npy") {
            let all = try ModelInput.load(path: path, selection: nil, model: model)
            let count = min(samples, all.tensor.shape[0])
            guard count > 0 else { throw CommandFailure.data("calibration data \(path) holds no samples") }
            input = try ModelInput.load(path: path, selection: 0..<count, model: model)
        } else {
            let file = try IDXFile.read(path)
            guard file.count > 0 else { throw CommandFailure.data("calibration data \(path) holds no images") }
            input = try ModelInput.loadIDX(path: path, selection: 0..<min(samples, file.count), model: model)
        }
        return split(input.tensor, batch: batch)
    }

    /// [N, ...] as batches of at most `batch` samples.
    static func split(_ tensor: Tensor, batch: Int) -> [Tensor] {
        let count = tensor.shape[0]
        let size = count == 0 ? 0 : tensor.elementCount / count
        let values = tensor.floats!
        return stride(from: 0, to: count, by: batch).map { start in
            let end = min(start + batch, count)
            var dims = tensor.shape.dims
            dims[0] = end - start
            return Tensor(shape: Shape(dims), floats: Array(values[(start * size)..<(end * size)]))
        }
    }
}
