import sharp from 'sharp';

/**
 * Draws a small synthetic "photo" for a scene (sky gradient, sun, hills, shapes) with sharp from SVG:
 * distinct per (scene, variant), deterministic, labelled as synthetic in its corner.
 */
export async function drawSceneImage(scene: string, variant: number, width = 800, height = 600): Promise<Buffer> {
  let h = 0;
  for (const ch of `${scene}:${variant}`) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = h % 360;
  const hue2 = (hue + 40 + (h >> 8) % 80) % 360;
  const sunX = 100 + ((h >> 4) % (width - 200));
  const hills = Array.from({ length: 4 }, (_, i) => {
    const y = height * (0.55 + i * 0.1);
    const c = `hsl(${(hue2 + i * 25) % 360},${40 + i * 10}%,${35 - i * 5}%)`;
    const bump = (k: number) => Math.round(y - 40 - ((h >> (k + i)) % 80));
    return `<path d="M0 ${y} Q ${width * 0.25} ${bump(1)} ${width * 0.5} ${y} T ${width} ${bump(3)} V ${height} H 0 Z" fill="${c}"/>`;
  }).join('');
  const houses = Array.from({ length: 3 + (h % 5) }, (_, i) => {
    const x = 40 + ((h >> i) % (width - 120));
    const y = height * 0.7 + ((h >> (i + 2)) % 60);
    return `<rect x="${x}" y="${y}" width="60" height="45" fill="hsl(${(hue + i * 50) % 360},60%,70%)"/><path d="M${x - 5} ${y} L${x + 30} ${y - 30} L${x + 65} ${y} Z" fill="hsl(${(hue + 180) % 360},50%,40%)"/>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="hsl(${hue},70%,55%)"/><stop offset="1" stop-color="hsl(${(hue + 30) % 360},80%,85%)"/>
    </linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#sky)"/>
    <circle cx="${sunX}" cy="${height * 0.25}" r="${40 + (h % 30)}" fill="hsl(${(hue + 200) % 360},90%,70%)"/>
    ${hills}${houses}
    <text x="${width - 10}" y="${height - 10}" font-family="sans-serif" font-size="14" text-anchor="end" fill="white">synthetic sample: ${scene} #${variant}</text>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 82 }).toBuffer();
}
