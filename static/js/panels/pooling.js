// The input window a pooling unit summarises. Kernel, stride and padding follow exactly from the
// receptive fields on the model card: a pool with kernel k, stride s and padding p on a source
// with (size, jump, start) has size + (k − 1)·jump, jump·s and start + ((k − 1)/2 − p)·jump.

const INPUT_FIELD = { size: [1, 1], jump: [1, 1], start: [0, 0], is_global: false };

function geometry(layer, source, axis) {
  const mine = layer.receptive_field;
  const theirs = source ? source.receptive_field : INPUT_FIELD;
  const jump = theirs.jump[axis];
  const stride = Math.round(mine.jump[axis] / jump);
  const kernel = Math.round((mine.size[axis] - theirs.size[axis]) / jump) + 1;
  const padding = Math.round((kernel - 1) / 2 - (mine.start[axis] - theirs.start[axis]) / jump);
  return { stride, kernel, padding };
}

// {rows: number[][]} of the source channel under unit (y, x); cells outside the map are left out.
export function poolWindow(layer, source, unit, channel) {
  const [height, width] = channel.shape;
  const at = (r, c) => channel.values[r * width + c];
  const spatial = layer.output_shape.slice(1);
  const global = layer.receptive_field.is_global || (spatial[0] === 1 && spatial[1] === 1 && height * width > 1);
  if (global) {
    return { rows: Array.from({ length: height }, (_, r) => Array.from({ length: width }, (_, c) => at(r, c))) };
  }
  const vertical = geometry(layer, source, 0);
  const horizontal = geometry(layer, source, 1);
  const top = unit.y * vertical.stride - vertical.padding;
  const left = unit.x * horizontal.stride - horizontal.padding;
  const rows = [];
  for (let r = Math.max(0, top); r < Math.min(height, top + vertical.kernel); r += 1) {
    const row = [];
    for (let c = Math.max(0, left); c < Math.min(width, left + horizontal.kernel); c += 1) row.push(at(r, c));
    rows.push(row);
  }
  return { rows };
}
