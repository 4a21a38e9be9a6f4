import Foundation
import ModelKitCore
import ModelKitData

/// Calibration samples for `quantize`, normalised like `run` does, in batches: the first N images
/// of an IDX dataset directory (its train split) or IDX images file, of a .npy array or a PNG, or of
/// a folder of .npy and .png files (taken in name order; a .npy may hold one sample or a batch).
enum CalibrationData {
    static func load(path: String, samples: Int, batch: Int, model: Model) throws -> [Tensor] {
        let input: Tensor
        if FileSystem.isDirectory(path) {
            let trainImages = path + "/" + IDXSplit.train.imagesFileName
            if FileSystem.fileExists(trainImages) || FileSystem.fileExists(trainImages + ".gz") {
                let dataset = try IDXDataset.load(directory: path, split: .train)
                let count = min(samples, dataset.count)
                guard count > 0 else { throw CommandFailure.data("calibration data \(path) holds no images") }
                input = try ModelInput.fromPixels((0..<count).map { Array(dataset.image($0)) }, height: dataset.rows,
                                                  width: dataset.columns, channels: 1, names: [], model: model, source: path).tensor
            } else {
                input = try loadFolder(path, samples: samples, model: model)
            }
        } else if ["npy", "png"].contains(path.split(separator: ".").last?.lowercased() ?? "") {
            input = try loadFile(path, samples: samples, model: model)
        } else {
            let file = try IDXFile.read(path)
            guard file.count > 0 else { throw CommandFailure.data("calibration data \(path) holds no images") }
            input = try ModelInput.loadIDX(path: path, selection: 0..<min(samples, file.count), model: model).tensor
        }
        return split(input, batch: batch)
    }

    /// The first `samples` samples of a .npy or .png file, checked for NaN and infinity.
    static func loadFile(_ path: String, samples: Int, model: Model) throws -> Tensor {
        let all = try ModelInput.load(path: path, selection: nil, model: model).tensor
        let count = min(samples, all.shape[0])
        let size = all.shape[0] == 0 ? 0 : all.elementCount / all.shape[0]
        let values = all.floats!
        guard count > 0 else { throw CommandFailure.data("calibration data \(path) holds no samples") }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw CommandFailure.data("calibration data \(path) holds a NaN or infinite value (sample \(bad / max(size, 1)))")
        }
        guard count < all.shape[0] else { return all }
        var dims = all.shape.dims
        dims[0] = count
        return Tensor(shape: Shape(dims), floats: Array(values[0..<(count * size)]))
    }

    /// Every .npy and .png file directly in `directory`, in name order, until `samples` are read.
    static func loadFolder(_ directory: String, samples: Int, model: Model) throws -> Tensor {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CommandFailure.data("calibration folder \(directory) cannot be listed: \(error.localizedDescription)")
        }
        let files = names.filter { name in
            let lower = name.lowercased()
            return (lower.hasSuffix(".npy") || lower.hasSuffix(".png")) && !FileSystem.isDirectory(directory + "/" + name)
        }.sorted()
        guard !files.isEmpty else {
            throw CommandFailure.data("calibration folder \(directory) holds no .npy or .png files (nor an IDX train split)")
        }
        var values: [Float] = []
        var count = 0
        var sampleDims: [Int] = []
        for name in files where count < samples {
            let part = try loadFile(directory + "/" + name, samples: samples - count, model: model)
            sampleDims = Array(part.shape.dims.dropFirst())
            values += part.floats!
            count += part.shape[0]
        }
        return Tensor(shape: Shape([count] + sampleDims), floats: values)
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
