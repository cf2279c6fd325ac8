"""GET /v1/products/{id} and its image."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.deps import IndexDep
from app.errors import ProductNotFoundError
from app.protocols import Product, SearchIndex
from app.schemas import ProductPublic
from app.search import image_url

router = APIRouter(prefix="/v1/products", tags=["products"])

# Product photos change only with a new index, which gives them new ETags.
IMAGE_CACHE_CONTROL = "public, max-age=86400"


def _find(index: SearchIndex, product_id: str) -> Product:
    product = index.get_products([product_id])[0]
    if product is None:
        raise ProductNotFoundError(f"no product with id {product_id!r}")
    return product


@router.get("/{product_id}")
def get_product(product_id: str, index: IndexDep) -> ProductPublic:
    product = _find(index, product_id)
    return ProductPublic(
        id=product.id,
        text=product.text,
        image_url=image_url(product.id),
        attributes=dict(product.attributes),
    )


@router.get("/{product_id}/image", response_class=FileResponse)
def get_product_image(product_id: str, index: IndexDep) -> FileResponse:
    product = _find(index, product_id)
    path = Path(product.image)
    if not path.is_file():
        raise ProductNotFoundError(f"the image of product {product_id!r} is missing on the server")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": IMAGE_CACHE_CONTROL})
