"""Rebuild the bundled example data (example/images, example/posts.csv) deterministically.

The photos come from scikit-image's sample data (public domain or CC0, see LICENSES.md); pass
the folder holding them (skimage/data from the scikit-image wheel). Everything else is drawn here.
Run: python example/build_example.py /path/to/skimage/data
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent
IMAGES = HERE / "images"
ACCOUNTS = ("green_town", "blue_party", "red_list")
PHOTOS = {
    "astronaut.png": "portrait",
    "camera.png": "camera",
    "coffee.png": "coffee",
    "chelsea.png": "cat",
    "rocket.jpg": "rocket",
    "hubble_deep_field.jpg": "sky",
    "horse.png": "horse",
    "brick.png": "brick",
}
PALETTES = [((32, 120, 60), (255, 255, 255)), ((20, 60, 160), (255, 230, 0)), ((190, 30, 45), (255, 255, 255))]
SLOGANS = ["VOTE ON SUNDAY", "JOIN US SATURDAY", "YOUR VOICE COUNTS", "TOWN HALL 7PM", "CLEAN AIR NOW", "FAIR RENTS"]


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def save_jpeg(image: Image.Image, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, "JPEG", quality=82, optimize=True, **options)


def load_photo(folder: Path, name: str, side: int = 480) -> Image.Image:
    image = Image.open(folder / name).convert("RGB")
    image.thumbnail((side, side))
    return image


def poster(rng: random.Random, slogan: str, palette, photo: Image.Image | None) -> Image.Image:
    background, ink = palette
    canvas = Image.new("RGB", (480, 600), background)
    draw = ImageDraw.Draw(canvas)
    if photo is not None:
        face = photo.copy()
        face.thumbnail((300, 300))
        canvas.paste(face, ((480 - face.width) // 2, 60))
    for line_number, word in enumerate(slogan.split()):
        draw.text((40, 380 + 62 * line_number), word, fill=ink, font=font(56))
    draw.ellipse((380, 500, 460, 580), fill=ink)
    draw.rectangle((0, 0, 480, 24), fill=ink)
    return canvas


def collage(photos: list[Image.Image], caption: str) -> Image.Image:
    canvas = Image.new("RGB", (600, 600), (245, 245, 245))
    for index, photo in enumerate(photos[:4]):
        tile = photo.copy()
        tile.thumbnail((280, 240))
        canvas.paste(tile, (15 + (index % 2) * 295, 15 + (index // 2) * 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 530, 600, 600), fill=(30, 30, 30))
    draw.text((20, 545), caption, fill=(255, 255, 255), font=font(32))
    return canvas


def rally(rng: random.Random) -> Image.Image:
    canvas = Image.new("RGB", (640, 420), (120, 170, 220))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((180, 60, 460, 200), fill=(60, 60, 70))
    draw.text((205, 110), "RALLY", fill=(255, 255, 255), font=font(60))
    for _ in range(260):
        x, y = rng.randint(0, 640), rng.randint(220, 420)
        r = rng.randint(8, 14)
        tone = rng.choice([(224, 172, 105), (141, 85, 36), (255, 219, 172), (198, 134, 66)])
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tone)
    return canvas


def studio(rng: random.Random, photo: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (640, 360), (15, 25, 60))
    person = photo.copy()
    person.thumbnail((260, 300))
    canvas.paste(person, (60, 30))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 290, 640, 340), fill=(200, 20, 30))
    draw.text((20, 300), "BREAKING: DEBATE TONIGHT", fill=(255, 255, 255), font=font(28))
    draw.text((540, 20), "TV1", fill=(255, 255, 255), font=font(36))
    return canvas


def main(photo_folder: Path) -> None:
    rng = random.Random(20240122)
    if IMAGES.exists():
        shutil.rmtree(IMAGES)
    photos = {label: load_photo(photo_folder, name) for name, label in PHOTOS.items()}
    posts = []

    def add(account: str, filename: str, image: Image.Image | None, caption: str, **save_options) -> str:
        relative = f"{account}/{filename}"
        if image is not None:
            target = IMAGES / relative
            if filename.lower().endswith((".jpg", ".jpeg")):
                save_jpeg(image, target, **save_options)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                image.save(target, **save_options)
        posts.append({"account": account, "caption": caption, "image": relative})
        return relative

    for index, slogan in enumerate(SLOGANS):
        account = ACCOUNTS[index % 3]
        face = photos["portrait"] if index % 2 == 0 else None
        add(account, f"poster_{index}.jpg", poster(rng, slogan, PALETTES[index % 3], face), f"{slogan.title()}!")
    for index in range(3):
        tiles = rng.sample(list(photos.values()), 4)
        add(ACCOUNTS[index], f"collage_{index}.jpg", collage(tiles, "Our week in pictures"), "Weekly recap")
    for index in range(3):
        add(ACCOUNTS[index], f"rally_{index}.jpg", rally(rng), "Thank you for coming!")
    add("blue_party", "studio_0.jpg", studio(rng, photos["portrait"]), "Tonight on TV1")
    add("red_list", "studio_1.jpg", studio(rng, photos["camera"]), "Watch the debate")
    for label in ("portrait", "camera", "coffee", "cat", "rocket", "sky"):
        add(ACCOUNTS[len(posts) % 3], f"{label}.jpg", photos[label], f"A {label} picture")

    # Unusual but valid files: each must come out of the manifest as ok.
    cmyk = photos["coffee"].convert("CMYK")
    add("green_town", "coffee_cmyk.jpg", None, "Coffee break (CMYK file)")
    (IMAGES / "green_town").mkdir(parents=True, exist_ok=True)
    cmyk.save(IMAGES / "green_town/coffee_cmyk.jpg", "JPEG", quality=80)
    add("blue_party", "horse_palette.png", photos["horse"].convert("P", palette=Image.Palette.ADAPTIVE), "Palette PNG")
    grey16 = photos["brick"].convert("L").point(lambda v: v * 256, mode="I").convert("I;16")
    add("red_list", "brick_16bit.png", grey16, "16-bit greyscale")
    grey_alpha = photos["cat"].convert("LA")
    add("red_list", "cat_alpha.png", grey_alpha, "Greyscale with alpha")
    frames = [poster(rng, word, PALETTES[i % 3], None).resize((240, 300)) for i, word in enumerate(["VOTE", "NOW"])]
    animated = IMAGES / "blue_party/animated.gif"
    animated.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=500, loop=0)
    posts.append({"account": "blue_party", "caption": "Animated GIF", "image": "blue_party/animated.gif"})
    # Stored sideways with an EXIF orientation of 6 (rotate 90 degrees clockwise to view).
    exif = Image.Exif()
    exif[0x0112] = 6
    add("green_town", "rocket_rotated.jpg", photos["rocket"].rotate(90, expand=True), "Rotated", exif=exif.tobytes())
    add("green_town", "poster_web.webp", poster(rng, "CLEAN AIR NOW", PALETTES[0], None), "WebP poster")
    add("red_list", "UPPERCASE.JPG", photos["rocket"].rotate(180), "Upper-case extension")
    # Two posts, one image: identical bytes in two places share one image id.
    shutil.copy(IMAGES / "green_town/poster_0.jpg", IMAGES / "red_list/poster_0_repost.jpg")
    posts.append({"account": "red_list", "caption": "Reposted", "image": "red_list/poster_0_repost.jpg"})

    # Broken files: each must be a manifest row with its reason, never a crash.
    payload = (IMAGES / "blue_party/studio_0.jpg").read_bytes()
    (IMAGES / "blue_party/truncated.jpg").write_bytes(payload[: len(payload) // 2])
    posts.append({"account": "blue_party", "caption": "Upload broke off", "image": "blue_party/truncated.jpg"})
    (IMAGES / "green_town/empty.png").write_bytes(b"")
    posts.append({"account": "green_town", "caption": "Empty file", "image": "green_town/empty.png"})
    (IMAGES / "red_list/not_an_image.jpg").write_text("This is a text file with a .jpg ending.\n")
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG", optimize=True)
    (IMAGES / "red_list/huge.png").write_bytes(buffer.getvalue())
    posts.append({"account": "red_list", "caption": "Decompression bomb", "image": "red_list/huge.png"})

    # A post whose image was never downloaded, a post with two images, a post with none.
    posts.append({"account": "green_town", "caption": "Lost image", "image": "green_town/missing.jpg"})
    posts.append(
        {"account": "blue_party", "caption": "Two pictures", "image": "blue_party/rally_1.jpg;blue_party/studio_0.jpg"}
    )
    posts.append({"account": "red_list", "caption": "Text-only post", "image": ""})
    # Images no post names: cat.jpg and sky.jpg stay in the folder only.
    posts = [p for p in posts if not p["image"].endswith(("/cat.jpg", "/sky.jpg"))]

    with open(HERE / "posts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["post_id", "account", "date", "caption", "image"])
        writer.writeheader()
        for number, post in enumerate(posts, start=1):
            day = 1 + number % 28
            writer.writerow({"post_id": f"p{number:03d}", "date": f"2025-09-{day:02d}", **post})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
